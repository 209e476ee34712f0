"""A workflow is checked before it runs: every problem is listed with its node and a fix."""

from __future__ import annotations

import pytest

from hanlin.flows import Workflow, WorkflowInvalidError

GOOD = """
name: ok
nodes:
  - {id: start, type: start, inputs: {question: string}}
  - {id: shout, type: template, template: "{{ start.question | upper }}"}
  - {id: done, type: answer, answer: "{{shout.output}}"}
"""


def problems(text: str) -> list[tuple[str | None, str, str]]:
    with pytest.raises(WorkflowInvalidError) as caught:
        Workflow.from_yaml(text)
    return caught.value.problems


def test_a_good_workflow_checks_and_round_trips_through_yaml() -> None:
    wf = Workflow.from_yaml(GOOD)
    assert wf.graph.order == ["start", "shout", "done"]
    again = Workflow.from_yaml(wf.to_yaml())
    assert again.spec == wf.spec


def test_unknown_type_names_the_node_and_the_closest_type() -> None:
    found = problems(GOOD.replace("type: template", "type: templat"))
    assert found[0][0] == "shout" and "unknown node type 'templat'" in found[0][1]
    assert "did you mean 'template'" in found[0][2]


def test_a_setting_the_type_does_not_have_is_an_error_with_the_allowed_ones() -> None:
    found = problems(GOOD.replace('template: "{{', 'templte: "{{'))
    assert (
        "shout",
        "template: Field required",
        "see the template node in docs/workflows.md",
    ) in found
    extra = [p for p in found if "templte" in p[1]]
    assert extra and "did you mean 'template'" in extra[0][2]


def test_missing_node_and_missing_output_references() -> None:
    found = problems(GOOD.replace("{{shout.output}}", "{{shuot.output}} {{start.questoin}}"))
    text = "\n".join(f"{n}: {m} / {f}" for n, m, f in found)
    assert "there is no node 'shuot'" in text and "did you mean 'shout'" in text
    assert "'start' has no output 'questoin'" in text and "did you mean 'question'" in text


def test_reading_a_node_that_runs_later_is_an_error() -> None:
    found = problems(GOOD.replace("{{ start.question | upper }}", "{{ done.answer }}"))
    assert any("'done' does not run before 'shout'" in m for _, m, _ in found)


def test_cycles_dangling_edges_and_branches() -> None:
    cyc = GOOD + "edges: [start -> shout, shout -> done, done -> shout]\n"
    assert any("cycle" in m and "loop" in f for _, m, f in problems(cyc))
    dangling = GOOD + "edges: [start -> shout, shout -> dnoe]\n"
    found = problems(dangling)
    assert any("points to no node 'dnoe'" in m and "did you mean 'done'" in f for _, m, f in found)
    branchy = """
name: b
nodes:
  - {id: start, type: start, inputs: {n: integer}}
  - {id: check, type: if_else, cases: [{id: big, when: "start.n > 3"}]}
  - {id: a, type: answer, answer: big}
edges: [start -> check, check -> a, check.huge -> a]
"""
    found = problems(branchy)
    assert any("names no branch" in m for _, m, _ in found)
    assert any("no branch 'huge'" in m and "big, else" in f for _, m, f in found)
    assert problems(branchy.replace("edges: [start -> check, check -> a, check.huge -> a]", ""))


def test_a_type_mismatch_is_named() -> None:
    text = """
name: t
nodes:
  - {id: start, type: start, inputs: {question: string}}
  - id: each
    type: iteration
    items: "{{start.question}}"
    body: {nodes: [{id: x, type: template, template: "{{each.item}}"}]}
    output: "{{x.output}}"
"""
    found = problems(text)
    assert found == [
        ("each", "items needs array, but {{start.question}} is string",
         "point items at a array output")
    ]  # fmt: skip


def test_body_nodes_see_the_iteration_and_outer_nodes() -> None:
    text = """
name: t
nodes:
  - {id: start, type: start, inputs: {xs: array}}
  - id: each
    type: iteration
    items: "{{start.xs}}"
    body: {nodes: [{id: x, type: template, template: "{{each.item}} {{each.idx}}"}]}
    output: "{{x.output}}"
"""
    found = problems(text)
    assert [p[1] for p in found] == [
        "template reads {{each.idx}}, but 'each' has no output 'idx' (it has: item, index)"
    ]


def test_on_error_branch_needs_an_error_edge_and_default_needs_a_value() -> None:
    text = GOOD.replace("type: template,", "type: template, on_error: branch,")
    assert any(
        "without an error edge" in m
        for _, m, _ in problems(text + "edges: [start -> shout, shout -> done]\n")
    )
    text = GOOD.replace("type: template,", "type: template, on_error: default,")
    assert any("without `default`" in m for _, m, _ in problems(text))


def test_bad_yaml_and_templates() -> None:
    with pytest.raises(Exception, match="not valid YAML"):
        Workflow.from_yaml("name: x\nnodes: [")
    found = problems(GOOD.replace("{{shout.output}}", "{{shout.output"))
    assert found[0][0] == "done"


def test_the_example_workflows_check() -> None:
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "examples" / "workflows"
    for path in sorted(folder.glob("*.yaml")):
        wf = Workflow.from_yaml(path.read_text("utf-8"), name=path.stem)
        assert wf.graph.order[0] == "start"
