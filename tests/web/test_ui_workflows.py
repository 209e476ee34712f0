"""The workflow editor in headless Chromium against the real server: build start → template →
answer by dragging node types onto the canvas and ports onto nodes, fill the settings, save,
run it and read the answer with every node lit up; open an existing workflow (the kb-brief
example) and save it unedited — the file stays byte for byte what it was, moved nodes keep
their place in the sidecar; a validation problem shows on the node at fault and a refused save
writes nothing; a run that pauses is answered in the page. Screenshots land in
``test-artifacts/ui/``."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from hanlin.config import load_settings
from hanlin.knowledge.kb import KnowledgeBase

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
REVIEW = """\
name: review
nodes:
  - {id: start, type: start, inputs: {draft: string}}
  - id: ask
    type: human_input
    kind: form
    prompt: "Publish {{start.draft}}?"
    form_schema:
      type: object
      properties: {approved: {type: boolean}, title: {type: string, minLength: 3}}
      required: [approved, title]
      additionalProperties: false
  - {id: out, type: answer, answer: "{{ask.title}}: {{start.draft}} ({{ask.approved}})"}
"""


def node(page: Any, node_id: str) -> Any:
    return page.locator(f"[data-testid=flow-node][data-node='{node_id}']")


def palette(page: Any, node_type: str) -> Any:
    return page.locator(f"[data-testid=palette-item][data-type='{node_type}']")


def set_field(page: Any, name: str, value: str) -> None:
    field = page.get_by_test_id("flow-panel").get_by_test_id(f"field-{name}")
    field.fill(value)
    field.blur()  # settings are taken on change, as a person leaving the field does


def test_build_connect_save_and_run_by_drag_and_drop(
    page: Any, server_url: str, hanlin_home: Path, artifacts_dir: Path, console_errors: list[str]
) -> None:
    from playwright.sync_api import expect

    page.goto(server_url + "/#/workflows")
    expect(page.get_by_test_id("flows-empty")).to_be_visible()
    expect(page.get_by_test_id("workflows-nav-link")).to_have_attribute("aria-current", "page")
    page.get_by_test_id("flow-new-name").fill("shout")
    page.get_by_test_id("flow-new").locator("button").click()
    expect(page.get_by_test_id("flow-title")).to_have_text("shout")
    # the palette is the server's registry
    types = httpx.get(f"{server_url}/v1/workflows/nodes").json()["data"]
    expect(page.get_by_test_id("palette-item")).to_have_count(len(types))

    canvas = page.get_by_test_id("flow-canvas")
    for node_type, y in (("start", 40), ("template", 160), ("answer", 280)):
        palette(page, node_type).drag_to(canvas, target_position={"x": 130, "y": y})
        expect(node(page, node_type)).to_be_visible()
    expect(page.get_by_test_id("flow-node")).to_have_count(3)
    expect(page.get_by_test_id("flow-dirty")).to_have_text("Unsaved changes")

    # edges: from an output port onto the next node
    node(page, "start").get_by_test_id("port-out").drag_to(node(page, "template"))
    node(page, "template").get_by_test_id("port-out").drag_to(node(page, "answer"))
    edges = page.get_by_test_id("flow-edge")
    expect(edges).to_have_count(2)
    expect(
        page.locator("[data-testid=flow-edge][data-source=start][data-target=template]")
    ).to_have_count(1)

    # settings in the side panel
    node(page, "start").click()
    expect(page.get_by_test_id("panel-title")).to_have_text("start")
    set_field(page, "inputs", '{"q": {"type": "string", "description": "what to shout"}}')
    node(page, "template").click()
    set_field(page, "template", "{{ start.q | upper }}!")
    node(page, "answer").click()
    set_field(page, "answer", "{{template.output}}")
    # moving a node keeps its edges attached
    box = node(page, "answer").bounding_box()
    page.mouse.move(box["x"] + 60, box["y"] + 15)
    page.mouse.down()
    page.mouse.move(box["x"] + 160, box["y"] + 35, steps=5)
    page.mouse.up()
    moved = node(page, "answer").bounding_box()
    assert moved["x"] == pytest.approx(box["x"] + 100, abs=2)
    page.get_by_test_id("flow-validate").click()
    expect(page.get_by_test_id("node-problem")).to_have_count(0)

    page.get_by_test_id("flow-save").click()
    expect(page.get_by_test_id("flow-dirty")).to_have_text("")
    saved = hanlin_home / "workflows" / "shout.yaml"
    assert yaml.safe_load(saved.read_text("utf-8")) == {
        "name": "shout",
        "nodes": [
            {
                "id": "start",
                "type": "start",
                "inputs": {"q": {"type": "string", "description": "what to shout"}},
            },
            {"id": "template", "type": "template", "template": "{{ start.q | upper }}!"},
            {"id": "answer", "type": "answer", "answer": "{{template.output}}"},
        ],
        "edges": ["start -> template", "template -> answer"],
    }
    layout = json.loads((hanlin_home / "workflows" / "shout.layout.json").read_text("utf-8"))
    assert set(layout["nodes"]) == {"start", "template", "answer"}
    page.screenshot(path=str(artifacts_dir / "70-workflow-built.png"), full_page=True)

    # run it: the inputs form comes from the start node, the nodes light up
    page.get_by_test_id("input-q").fill("hello")
    page.get_by_test_id("flow-run").click()
    expect(page.get_by_test_id("run-output")).to_have_text("HELLO!")
    expect(page.get_by_test_id("run-status")).to_have_attribute("data-status", "done")
    for node_id in ("start", "template", "answer"):
        expect(node(page, node_id)).to_have_attribute("data-status", "done")
    node(page, "template").click()
    expect(page.get_by_test_id("node-outputs")).to_contain_text('"output": "HELLO!"')
    expect(page.get_by_test_id("node-inputs")).to_contain_text('"q": "hello"')
    page.screenshot(path=str(artifacts_dir / "71-workflow-run.png"), full_page=True)

    # delete an edge and a node: the canvas and the saved file follow
    page.locator("[data-testid=flow-edge][data-source=template]").dispatch_event("pointerdown")
    page.get_by_test_id("edge-delete").click()
    expect(edges).to_have_count(1)
    node(page, "answer").click()
    page.keyboard.press("Delete")
    expect(page.get_by_test_id("flow-node")).to_have_count(2)

    # the list shows it and its run; Chinese follows the language toggle
    page.get_by_test_id("flows-back").click()
    expect(page.get_by_test_id("flow-row")).to_have_count(1)
    expect(page.get_by_test_id("run-row")).to_have_count(1)
    page.get_by_test_id("lang-toggle").click()
    expect(page.get_by_test_id("flows-title")).to_have_text("工作流")
    assert not console_errors, console_errors


def test_an_unedited_workflow_saves_as_the_same_file(
    page: Any, server_url: str, hanlin_home: Path, console_errors: list[str]
) -> None:
    from playwright.sync_api import expect

    KnowledgeBase.create("sample", settings=load_settings()).close()
    folder = hanlin_home / "workflows"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "examples" / "workflows" / "kb-brief.yaml", folder / "kb-brief.yaml")
    before = (folder / "kb-brief.yaml").read_bytes()
    shown = httpx.get(f"{server_url}/v1/workflows/kb-brief").json()

    page.goto(server_url + "/#/workflows/kb-brief")
    expect(page.get_by_test_id("flow-node")).to_have_count(6)
    expect(page.get_by_test_id("flow-edge")).to_have_count(5)
    # the if/else's branches are ports of their own, with their edges
    found = node(page, "found")
    expect(found.get_by_test_id("port-out")).to_have_count(2)
    expect(
        page.locator("[data-testid=flow-edge][data-source=found][data-handle=some]")
    ).to_have_count(1)
    expect(
        page.locator("[data-testid=flow-edge][data-source=found][data-handle=else]")
    ).to_have_count(1)

    with page.expect_request(lambda r: r.method == "PUT") as sent:
        page.get_by_test_id("flow-save").click()
    assert sent.value.post_data_json["definition"] == shown["definition"]
    expect(page.get_by_test_id("toast").last).to_contain_text("unchanged")
    assert (folder / "kb-brief.yaml").read_bytes() == before

    # moving a node saves its place beside the file, not in it
    box = node(page, "nothing").bounding_box()
    page.mouse.move(box["x"] + 50, box["y"] + 15)
    page.mouse.down()
    page.mouse.move(box["x"] + 50, box["y"] + 95, steps=4)
    page.mouse.up()
    page.get_by_test_id("flow-save").click()
    expect(page.get_by_test_id("flow-dirty")).to_have_text("")
    assert (folder / "kb-brief.yaml").read_bytes() == before
    layout = json.loads((folder / "kb-brief.layout.json").read_text("utf-8"))
    page.reload()
    expect(node(page, "nothing")).to_have_css("top", f"{layout['nodes']['nothing']['y']:g}px")
    assert (
        httpx.get(f"{server_url}/v1/workflows/kb-brief").json()["definition"] == shown["definition"]
    )

    # an edit changes exactly what was edited
    node(page, "retrieve").click()
    set_field(page, "k", "5")
    page.get_by_test_id("flow-save").click()
    expect(page.get_by_test_id("flow-dirty")).to_have_text("")
    after = httpx.get(f"{server_url}/v1/workflows/kb-brief").json()["definition"]
    expected = json.loads(json.dumps(shown["definition"]))
    expected["nodes"][1]["k"] = 5
    assert after == expected
    assert not console_errors, console_errors


def test_a_problem_shows_on_its_node_and_a_refused_save_writes_nothing(
    page: Any, server_url: str, hanlin_home: Path, console_errors: list[str]
) -> None:
    from playwright.sync_api import expect

    folder = hanlin_home / "workflows"
    folder.mkdir(parents=True, exist_ok=True)
    broken = REVIEW.replace("{{ask.title}}: ", "{{ghost.text}}: ")
    (folder / "review.yaml").write_text(broken, "utf-8")
    # a workflow that does not check opens as written, its problem on the node at fault
    page.goto(server_url + "/#/workflows/review")
    problem = node(page, "out").get_by_test_id("node-problem")
    expect(problem).to_contain_text("ghost")
    expect(node(page, "out")).to_have_class(re.compile(r"\bhas-problem\b"))
    expect(node(page, "ask").get_by_test_id("node-problem")).to_have_count(0)
    node(page, "out").click()
    expect(page.get_by_test_id("panel-problems")).to_contain_text("ghost")
    page.get_by_test_id("flow-save").click()
    expect(page.get_by_test_id("toast").last).to_contain_text("invalid")
    assert (folder / "review.yaml").read_text("utf-8") == broken

    # fixed in the panel, the mark goes and the save goes through
    set_field(page, "answer", "{{ ask.title }}")
    page.get_by_test_id("flow-validate").click()
    expect(problem).to_have_count(0)
    page.get_by_test_id("flow-save").click()
    expect(page.get_by_test_id("flow-dirty")).to_have_text("")
    saved = yaml.safe_load((folder / "review.yaml").read_text("utf-8"))
    assert saved["nodes"][2] == {"id": "out", "type": "answer", "answer": "{{ ask.title }}"}

    # a new problem made in the editor is marked by Validate
    node(page, "ask").click()
    set_field(page, "prompt", "Publish {{ nobody.x }}?")
    page.get_by_test_id("flow-validate").click()
    expect(node(page, "ask").get_by_test_id("node-problem")).to_contain_text("nobody")
    # (Chromium logs the refused requests themselves: the only console errors expected)
    assert all("400" in e for e in console_errors), console_errors


def test_a_paused_run_is_answered_in_the_page(
    page: Any, server_url: str, hanlin_home: Path, artifacts_dir: Path, console_errors: list[str]
) -> None:
    from playwright.sync_api import expect

    folder = hanlin_home / "workflows"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "review.yaml").write_text(REVIEW, "utf-8")
    page.goto(server_url + "/#/workflows/review")
    expect(node(page, "ask")).to_be_visible()  # the workflow is drawn before its inputs are filled
    page.get_by_test_id("input-draft").fill("the report")
    page.get_by_test_id("flow-run").click()
    form = page.get_by_test_id("flow-form")
    expect(form.get_by_test_id("form-prompt")).to_have_text("Publish the report?")
    expect(page.get_by_test_id("run-status")).to_have_attribute("data-status", "paused")
    expect(node(page, "ask")).to_have_attribute("data-status", "paused")
    expect(node(page, "start")).to_have_attribute("data-status", "done")
    page.screenshot(path=str(artifacts_dir / "72-workflow-paused.png"), full_page=True)

    # a wrong answer is refused with the field named; the run stays paused
    form.get_by_test_id("answer-title").fill("x")
    form.get_by_test_id("form-submit").click()
    expect(form.get_by_test_id("form-error")).to_contain_text("title")
    expect(page.get_by_test_id("run-status")).to_have_attribute("data-status", "paused")

    form.get_by_test_id("answer-title").fill("Q3")
    form.get_by_test_id("answer-approved").check()
    form.get_by_test_id("answer-title").fill("Q3 report")
    form.get_by_test_id("form-submit").click()
    expect(page.get_by_test_id("run-output")).to_have_text("Q3 report: the report (True)")
    expect(node(page, "ask")).to_have_attribute("data-status", "done")
    expect(page.get_by_test_id("flow-form")).to_have_count(0)

    # the run, opened from the list, shows on the canvas from its history
    page.get_by_test_id("flows-back").click()
    page.get_by_test_id("run-link").first.click()
    expect(node(page, "out")).to_have_attribute("data-status", "done")
    expect(page.get_by_test_id("run-output")).to_have_text("Q3 report: the report (True)")
    assert all("400" in e or "422" in e for e in console_errors), console_errors
