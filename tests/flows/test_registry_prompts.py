"""An llm node whose prompt comes from the prompt registry (``prompt_ref``): the version a label
or number names, filled from the node's inputs, checked before the run (a prompt the registry
lacks, a variable it does not declare or one it needs)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hanlin.config import Settings, load_settings
from hanlin.flows import FlowEngine, Workflow
from hanlin.flows.base import WorkflowInvalidError
from hanlin.models.gateway import Gateway
from hanlin.prompts import NewVersion, prompt_library
from hanlin.testing.upstream import UpstreamServer

from .test_model_nodes import CHAT, reply


def flow(ref: str, variables: str = "{topic: '{{start.topic}}', n: '{{start.n}}'}") -> str:
    return f"""
name: registry
nodes:
  - {{id: start, type: start, inputs: {{topic: string, n: integer}}}}
  - id: write
    type: llm
    model: fake/m
    stream: false
    prompt_ref: "{ref}"
    variables: {variables}
  - {{id: out, type: answer, answer: "{{{{write.text}}}}"}}
"""


@pytest.fixture()
def model() -> Iterator[tuple[UpstreamServer, FlowEngine, Settings]]:
    with UpstreamServer() as upstream:
        settings = load_settings(
            models={"endpoints": {"fake": {"base_url": upstream.url}}, "retries": 0}
        )
        library = prompt_library(settings)
        library.create(
            "haiku",
            NewVersion(
                text="system:\nYou write haiku.\n\nuser:\nA haiku about {topic}, {n} lines.",
                variables=[{"name": "topic"}, {"name": "n", "type": "int"}],  # type: ignore[list-item]
            ),
            "test",
        )
        library.create("haiku", NewVersion(text="Write {n} words on {topic}."), "test")
        library.set_label("haiku", "staging", 2, "test")
        gateway = Gateway(settings)
        engine = FlowEngine(settings, gateway=gateway)
        yield upstream, engine, settings
        engine.close()
        gateway.close()


def sent(upstream: UpstreamServer) -> list[dict[str, str]]:
    messages: list[dict[str, str]] = upstream.app.requests[-1][2]["messages"]
    return messages


def test_the_prompt_is_read_by_label_or_version_and_filled_from_the_inputs(
    model: tuple[UpstreamServer, FlowEngine, Settings],
) -> None:
    upstream, engine, settings = model
    upstream.app.script(CHAT, reply("old pond"), reply("tea"), reply("leaf"))
    run = engine.run(Workflow.from_yaml(flow("haiku"), settings), {"topic": "tea", "n": 3})
    assert run.status == "done", run.error
    assert run.outputs == {"answer": "old pond"}
    # production: version 1, written as turns
    assert sent(upstream) == [
        {"role": "system", "content": "You write haiku."},
        {"role": "user", "content": "A haiku about tea, 3 lines."},
    ]
    engine.run(Workflow.from_yaml(flow("haiku:staging"), settings), {"topic": "tea", "n": 2})
    assert sent(upstream) == [{"role": "user", "content": "Write 2 words on tea."}]
    engine.run(Workflow.from_yaml(flow("haiku@1"), settings), {"topic": "oolong", "n": 5})
    assert sent(upstream)[-1]["content"] == "A haiku about oolong, 5 lines."


def test_a_prompt_the_registry_lacks_or_bad_variables_are_validation_errors(
    model: tuple[UpstreamServer, FlowEngine, Settings],
) -> None:
    _, _, settings = model
    with pytest.raises(WorkflowInvalidError) as missing:
        Workflow.from_yaml(flow("sonnet"), settings)
    problem = missing.value.problems[0]
    assert problem[0] == "write" and "has no 'sonnet'" in problem[1]
    assert "hanlin prompt create sonnet" in problem[2]
    with pytest.raises(WorkflowInvalidError, match="has no 'haiku@9'"):
        Workflow.from_yaml(flow("haiku@9"), settings)
    with pytest.raises(WorkflowInvalidError, match="names no version"):
        Workflow.from_yaml(flow("haiku@x"))  # the form is checked even without settings
    with pytest.raises(WorkflowInvalidError) as bad:
        Workflow.from_yaml(flow("haiku", "{topik: '{{start.topic}}'}"), settings)
    messages = [p[1] for p in bad.value.problems]
    assert any("has no variable 'topik'" in m for m in messages)
    assert any("needs 'topic'" in m for m in messages) and any("needs 'n'" in m for m in messages)
    with pytest.raises(WorkflowInvalidError, match="one of `prompt`, `messages` or `prompt_ref`"):
        Workflow.from_yaml(flow("haiku").replace("prompt_ref:", "prompt: x\n    prompt_ref:"))


def test_a_value_of_the_wrong_type_fails_the_node_naming_the_variable(
    model: tuple[UpstreamServer, FlowEngine, Settings],
) -> None:
    upstream, engine, settings = model
    wf = Workflow.from_yaml(flow("haiku", "{topic: '{{start.topic}}', n: 'three'}"), settings)
    run = engine.run(wf, {"topic": "tea", "n": 3})
    assert run.status == "failed"
    assert "the variable 'n' of prompt 'haiku@1' must be int" in (run.error or "")
    assert upstream.app.requests == []
