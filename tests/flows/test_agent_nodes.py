"""Agents in workflows: the ``agent`` node, ``team`` (sequential SOP and supervisor), the tool
node calling an MCP server's tool, and the worked examples in examples/workflows/ — run offline
against a fake OpenAI-compatible upstream that behaves like a capable model."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hanlin.config import load_settings
from hanlin.flows import FlowEngine, Workflow, load_workflow
from hanlin.flows.base import WorkflowInvalidError
from hanlin.flows.events import NodeFinishedEvent, NodeProgressEvent
from hanlin.models.gateway import Gateway
from hanlin.testing.capable_model import capable_reply
from hanlin.testing.upstream import FakeUpstream, Reply, UpstreamServer

EXAMPLES = Path(__file__).parents[2] / "examples" / "workflows"
FLAKY = str(Path(__file__).parents[1] / "agents" / "mcp" / "flaky_server.py")


def _json(content: dict[str, Any]) -> Reply:
    return Reply.chat(json.dumps(content), prompt_tokens=9, completion_tokens=3)


def model(body: dict[str, Any]) -> Reply:
    """A capable model: classifies, extracts and routes by what the prompt says, and otherwise
    answers (calling the tool the task names) as :func:`capable_reply` does."""
    fmt = body.get("response_format") or {}
    if fmt.get("type") != "json_schema":
        return capable_reply(body)
    props = fmt["json_schema"]["schema"]["properties"]
    prompt = body["messages"][-1]["content"]
    if "class_id" in props:
        text = prompt.split("Text to classify:")[-1].lower()
        return _json(
            {"class_id": "refund" if "refund" in text else "bug" if "crash" in text else "none"}
        )
    if "next" in props:  # the supervisor: the engineer once, then finish
        done = "## engineer" in prompt
        return _json({"next": "finish" if done else "engineer", "instruction": "Find the cause"})
    text = prompt.split("Text:")[-1]
    order = re.search(r"[Oo]rder (\S+) ", text)
    amount = re.search(r"refund (\d+(?:\.\d+)?)", text)
    return _json(
        {
            "order_id": order.group(1) if order else None,
            "amount": float(amount.group(1)) if amount else None,
        }
    )


@pytest.fixture()
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer(FakeUpstream(responder=model)) as server:
        yield server


@pytest.fixture()
def engine(upstream: UpstreamServer, tmp_path: Path) -> Iterator[FlowEngine]:
    settings = load_settings(
        models={
            "default": "fake/m",
            "endpoints": {"fake": {"base_url": upstream.url}},
            "retries": 0,
        },
        mcpServers={"flaky": {"command": sys.executable, "args": [FLAKY], "timeout": 20}},
    )
    gateway = Gateway(settings)
    eng = FlowEngine(settings, gateway=gateway)
    yield eng
    eng.close()
    gateway.close()


def _chat_requests(upstream: UpstreamServer) -> int:
    return sum(1 for r in upstream.app.requests if r[0].endswith("/chat/completions"))


def test_support_triage_refund_waits_for_approval_and_sends_the_agents_reply(
    engine: FlowEngine, upstream: UpstreamServer
) -> None:
    wf = load_workflow(str(EXAMPLES / "support-triage.yaml"), engine.settings)
    message = "Order A-17 was charged twice, please refund 12.5 to my card"
    run = engine.start(wf, {"message": message})
    events = list(engine.stream(run.id))
    paused = engine.store.get_run(run.id)
    assert paused.status == "paused" and paused.pending is not None
    assert paused.pending.prompt.startswith("Refund 12.5 for order A-17 and send this reply?")
    # the refund agent checked the amount with its calculator: a tool call, streamed
    calls = [e for e in events if isinstance(e, NodeProgressEvent) and e.node == "refund_agent"]
    assert [c.kind for c in calls] == ["tool_call", "tool_result"]
    assert calls[0].data["name"] == "calculator" and calls[1].data["ok"] is True
    assert "12.5" in paused.pending.prompt.split("reply?")[1]  # the agent's answer cites it

    before = _chat_requests(upstream)
    engine.answer(run.id, {"approved": True})
    done = engine.drive(run.id)
    assert done.status == "done", done.error
    assert done.outputs is not None and "12.5" in done.outputs["answer"]
    assert _chat_requests(upstream) == before  # nothing asked of the model again on resume
    taken = {s.node for s in engine.history(run.id) if s.status == "done"}
    assert {"classify", "extract", "refund_agent", "approve", "sent"} <= taken
    assert "bug_team" not in taken and "general" not in taken


def test_support_triage_without_an_order_asks_for_it(engine: FlowEngine) -> None:
    wf = load_workflow(str(EXAMPLES / "support-triage.yaml"), engine.settings)
    run = engine.run(wf, {"message": "I want a refund"})
    assert run.status == "done", run.error
    assert run.outputs is not None
    assert run.outputs["answer"].startswith("Please tell us your order number")
    assert "order_id: required" in run.outputs["answer"]


def test_a_supervisor_hands_a_bug_to_the_engineer_then_finishes(engine: FlowEngine) -> None:
    wf = load_workflow(str(EXAMPLES / "support-triage.yaml"), engine.settings)
    run = engine.start(wf, {"message": "The app crashes when I export"})
    events = list(engine.stream(run.id))
    final = engine.store.get_run(run.id)
    assert final.status == "done", final.error
    handoffs = [e.data for e in events if isinstance(e, NodeProgressEvent) and e.kind == "handoff"]
    assert [h["next"] for h in handoffs] == ["engineer", "finish"]
    steps = {s.node: s for s in engine.history(run.id)}
    assert steps["bug_team[0].engineer"].status == "done"
    team = steps["bug_team"].outputs
    assert team["turns"] == 1 and team["transcript"][0]["role"] == "engineer"
    assert final.outputs == {"answer": team["answer"]} and team["answer"]
    assert any(
        isinstance(e, NodeFinishedEvent) and e.node == "bug_team[0].engineer" for e in events
    )


SOP_TEAM = """
name: sop
nodes:
  - {id: start, type: start, inputs: {topic: string}}
  - id: team
    type: team
    task: "Report on {{start.topic}}"
    sop: "Research, then write."
    roles:
      - {id: researcher, description: takes notes, instructions: You research.}
      - {id: writer, description: writes the report, agent: {system: You write.}}
  - {id: out, type: answer, answer: "{{team.answer}}"}
"""


def test_a_sequential_team_hands_each_artefact_to_the_next_role(
    engine: FlowEngine, upstream: UpstreamServer
) -> None:
    run = engine.run(Workflow.from_yaml(SOP_TEAM), {"topic": "tides"})
    assert run.status == "done", run.error
    tasks = [
        r[2]["messages"]
        for r in upstream.app.requests
        if r[0].endswith("/chat/completions") and "tools" not in r[2]
    ]
    systems = [m[0]["content"] for m in tasks]
    assert systems == ["You research.", "You write."]
    writer_task = tasks[1][-1]["content"]
    assert "Research, then write." in writer_task and "Report on tides" in writer_task
    assert "Handed to you by the researcher" in writer_task
    steps = {s.node: s for s in engine.history(run.id)}
    notes = steps["team.researcher"].outputs["answer"]
    assert notes and notes in writer_task
    assert run.outputs == {"answer": steps["team.writer"].outputs["answer"]}


def test_agent_and_team_definitions_are_checked_with_the_node_named(engine: FlowEngine) -> None:
    with pytest.raises(WorkflowInvalidError) as bad:
        Workflow.from_yaml(SOP_TEAM.replace("agent: {system: You write.}", "agent: {sytem: x}"))
    assert "'writer'" in bad.value.message and "sytem" in bad.value.message
    with pytest.raises(WorkflowInvalidError, match="role ids must be unique"):
        Workflow.from_yaml(SOP_TEAM.replace("id: writer", "id: researcher"))
    missing = SOP_TEAM.replace("agent: {system: You write.}", "agent: no-such-agent")
    Workflow.from_yaml(missing)  # names are checked with the resources
    with pytest.raises(WorkflowInvalidError, match="no agent named 'no-such-agent'"):
        Workflow.from_yaml(missing, engine.settings)


MCP = """
name: mcp
nodes:
  - {id: start, type: start, inputs: {text: string}}
  - {id: call, type: tool, server: flaky, tool: echo, arguments: {text: "{{start.text}}"}}
  - {id: out, type: answer, answer: "{{call.result}}"}
"""


def test_the_tool_node_calls_a_configured_mcp_servers_tool(engine: FlowEngine) -> None:
    run = engine.run(Workflow.from_yaml(MCP, engine.settings), {"text": "hi"})
    assert run.status == "done", run.error
    assert run.outputs == {"answer": "echo: hi"}
    with pytest.raises(WorkflowInvalidError, match=r"add \[mcpServers.nope\] to hanlin.toml"):
        Workflow.from_yaml(MCP.replace("server: flaky", "server: nope"), engine.settings)
    wrong = engine.run(Workflow.from_yaml(MCP.replace("tool: echo", "tool: ech")), {"text": "x"})
    assert wrong.status == "failed" and "has no tool 'ech'" in wrong.error
    assert "echo" in wrong.error  # its tools are listed


def test_the_examples_validate_from_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    from hanlin.cli.main import main
    from hanlin.knowledge.kb import KnowledgeBase

    KnowledgeBase.create("sample", settings=load_settings()).close()  # research-team reads it
    for name in ("support-triage", "research-team"):
        try:
            main(["workflow", "validate", str(EXAMPLES / f"{name}.yaml")])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        assert code == 0, captured.err
        assert f"ok {name}" in captured.out + captured.err
