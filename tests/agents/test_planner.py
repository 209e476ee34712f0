"""Planner mode against the fake OpenAI-compatible upstream: plans, subtasks with tools,
re-planning after a failure, repair of bad plans, and limits over the whole run."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from hanlin.agents.events import (
    ApprovalRequest,
    FinalEvent,
    PlanEvent,
    StepEvent,
    SubtaskEvent,
    TextEvent,
    ToolCallEvent,
)
from hanlin.agents.loop import AgentLimits, ApprovalPolicy
from hanlin.agents.plan import PlanError, parse_plan
from hanlin.agents.planner import PlannerAgent
from hanlin.agents.tools import calculator, workspace_tools
from hanlin.agents.tools.base import tool
from hanlin.models.gateway import Gateway
from hanlin.testing.upstream import Reply, UpstreamServer
from tests.agents.test_loop import answer, calls_stream

PATH = "/v1/chat/completions"
MODEL = "fake/m"


def plan(*subtasks: tuple[str, str, list[str]]) -> Reply:
    """A streamed reply holding a plan: (id, title, depends_on) per subtask."""
    items = [{"id": i, "title": t, "description": "", "depends_on": d} for i, t, d in subtasks]
    return answer(json.dumps({"subtasks": items}))


def bodies(upstream: UpstreamServer) -> list[dict[str, Any]]:
    return [body for path, _, body in upstream.app.requests if path == PATH]


def prompt_text(body: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content") or "") for m in body["messages"])


@tool
def get_weather(city: str) -> str:
    """The weather in a city.

    Args:
        city: the city's name
    """
    return f"18 °C and sunny in {city}"


def test_a_plan_runs_subtask_by_subtask_with_tools_and_ends_in_a_report(
    gateway: Gateway, upstream: UpstreamServer
) -> None:
    upstream.app.script(
        PATH,
        plan(("1", "Find the weather in Paris", []), ("2", "Convert it to Fahrenheit", ["1"])),
        calls_stream(("get_weather", '{"city": "Paris"}')),
        answer("Paris: 18 °C and sunny."),
        calls_stream(("calculator", '{"expression": "18 * 9 / 5 + 32"}')),
        answer("64.4 °F"),
        answer("Paris is sunny at 18 °C, which is 64.4 °F."),
    )
    agent = PlannerAgent(gateway, MODEL, [get_weather, calculator()], system="Be brief.")
    result = asyncio.run(agent.arun("How warm is Paris in Fahrenheit?"))

    assert result.stop_reason == "answer", result.error
    assert result.text == "Paris is sunny at 18 °C, which is 64.4 °F."
    assert result.steps == 6
    assert [r.content for r in result.tool_results] == ["18 °C and sunny in Paris", "64.4"]
    # the plan call asked for JSON matching the plan schema
    sent = bodies(upstream)
    assert sent[0]["response_format"]["type"] == "json_schema"
    assert "subtasks" in json.dumps(sent[0]["response_format"])
    # subtask 2 saw subtask 1's result; the report saw both results
    assert "Paris: 18 °C and sunny." in prompt_text(sent[3])
    assert "Be brief." in prompt_text(sent[3])
    report_prompt = prompt_text(sent[5])
    assert "Paris: 18 °C and sunny." in report_prompt and "64.4 °F" in report_prompt
    # events arrive in order: plan, subtask 1 (with its tool events), subtask 2, report, final
    kinds = [
        (type(e).__name__, getattr(e, "status", None))
        for e in result.events
        if not isinstance(e, StepEvent | TextEvent)
    ]
    assert kinds == [
        ("PlanEvent", None),
        ("SubtaskEvent", "running"),
        ("ToolCallEvent", None),
        ("ToolResultEvent", None),
        ("SubtaskEvent", "done"),
        ("SubtaskEvent", "running"),
        ("ToolCallEvent", None),
        ("ToolResultEvent", None),
        ("SubtaskEvent", "done"),
        ("FinalEvent", None),
    ]
    first_plan = next(e for e in result.events if isinstance(e, PlanEvent))
    assert [s["id"] for s in first_plan.subtasks] == ["1", "2"]
    assert first_plan.subtasks[1]["depends_on"] == ["1"]
    # steps are numbered across the whole run and usage accumulates over every model call
    steps = [e for e in result.events if isinstance(e, StepEvent)]
    assert [s.step for s in steps] == sorted(s.step for s in steps) and steps[-1].step == 6
    assert result.usage.total_tokens == 6 * 29 == steps[-1].usage.total_tokens
    calls = [e for e in result.events if isinstance(e, ToolCallEvent)]
    assert [c.step for c in calls] == [2, 4]
    report_text = "".join(
        e.text for e in result.events[result.events.index(steps[-2]) :] if isinstance(e, TextEvent)
    )
    assert report_text == result.text


def test_a_failing_subtask_triggers_a_replan(
    gateway: Gateway, upstream: UpstreamServer, tmp_path: Path
) -> None:
    upstream.app.script(
        PATH,
        plan(("1", "Read notes.txt", []), ("2", "Summarize the notes", ["1"])),
        calls_stream(("read_file", '{"path": "notes.txt"}')),
        answer("FAILED: notes.txt does not exist"),
        plan(("3", "Compute 6 * 7 instead", [])),
        calls_stream(("calculator", '{"expression": "6 * 7"}')),
        answer("6 * 7 = 42"),
        answer("The notes were missing; the computed answer is 42."),
    )
    tools = [*workspace_tools(tmp_path / "ws"), calculator()]
    result = PlannerAgent(gateway, MODEL, tools).run("Summarize my notes")

    assert result.stop_reason == "answer", result.error
    sub_events = [e for e in result.events if isinstance(e, SubtaskEvent)]
    assert [(e.id, e.status) for e in sub_events] == [
        ("1", "running"),
        ("1", "failed"),
        ("3", "running"),
        ("3", "done"),
    ]
    assert sub_events[1].error == "notes.txt does not exist"
    plans = [e for e in result.events if isinstance(e, PlanEvent)]
    assert [p.revision for p in plans] == [0, 1]
    assert plans[1].reason is not None and "notes.txt does not exist" in plans[1].reason
    assert [(s["id"], s["status"]) for s in plans[1].subtasks] == [
        ("1", "failed"),
        ("3", "pending"),
    ]
    sent = bodies(upstream)
    replan_prompt = prompt_text(sent[3])
    assert "Subtask 1" in replan_prompt and "notes.txt does not exist" in replan_prompt
    assert "not found" in result.tool_results[0].content or result.tool_results[0].is_error
    report_prompt = prompt_text(sent[-1])
    assert "6 * 7 = 42" in report_prompt and "[failed]" in report_prompt
    assert result.text == "The notes were missing; the computed answer is 42."


def test_replans_are_bounded_and_dependents_of_a_failure_are_skipped(
    gateway: Gateway, upstream: UpstreamServer
) -> None:
    upstream.app.script(
        PATH,
        plan(("a", "Step A", []), ("b", "Step B", ["a"]), ("c", "Step C", [])),
        answer("FAILED: cannot do A"),
        answer("C is done"),
        answer("Only C could be done."),
    )
    agent = PlannerAgent(gateway, MODEL, [calculator()], max_replans=0)
    result = asyncio.run(agent.arun("Do A, B and C"))
    statuses = [(e.id, e.status) for e in result.events if isinstance(e, SubtaskEvent)]
    assert statuses == [("a", "running"), ("a", "failed"), ("c", "running"), ("c", "done")]
    assert "Subtask b — Step B [skipped]" in prompt_text(bodies(upstream)[-1])
    assert result.text == "Only C could be done." and len(bodies(upstream)) == 4


def test_an_invalid_plan_is_sent_back_with_the_reason_and_repaired(
    gateway: Gateway, upstream: UpstreamServer
) -> None:
    upstream.app.script(
        PATH,
        answer('{"subtasks": [{"id": "1", "title": "Look", "depends_on": ["9"]}]}'),
        answer("```json\n{'subtasks': [{'id': '1', 'title': 'Look', 'depends_on': [],}]}\n```"),
        answer("Looked."),
        answer("All done."),
    )
    result = asyncio.run(PlannerAgent(gateway, MODEL, []).arun("Look around"))
    assert result.stop_reason == "answer" and result.text == "All done."
    repair_prompt = prompt_text(bodies(upstream)[1])
    assert "depends on unknown ids: 9" in repair_prompt
    plans = [e for e in result.events if isinstance(e, PlanEvent)]
    assert len(plans) == 1 and plans[0].reason is None
    assert plans[0].subtasks[0]["title"] == "Look"


def test_a_model_that_never_plans_properly_falls_back_to_one_subtask(
    gateway: Gateway, upstream: UpstreamServer
) -> None:
    upstream.app.script(
        PATH,
        answer("Sure! I will look it up."),
        answer('{"subtasks": []}'),
        answer("The capital of France is Paris."),
        answer("Paris."),
    )
    agent = PlannerAgent(gateway, MODEL, [], max_plan_repairs=1)
    result = asyncio.run(agent.arun("What is the capital of France?"))
    plans = [e for e in result.events if isinstance(e, PlanEvent)]
    assert plans[0].subtasks[0]["title"] == "What is the capital of France?"
    assert plans[0].reason is not None and "no usable plan" in plans[0].reason
    assert "the plan has no subtasks" in plans[0].reason
    assert result.text == "Paris." and result.stop_reason == "answer"
    assert len(bodies(upstream)) == 4


def test_step_limits_cover_the_whole_run(gateway: Gateway, upstream: UpstreamServer) -> None:
    upstream.app.script(
        PATH,
        plan(("1", "Add numbers", []), ("2", "Report", ["1"])),
        calls_stream(("calculator", '{"expression": "1 + 1"}')),
        calls_stream(("calculator", '{"expression": "2 + 2"}')),
        calls_stream(("calculator", '{"expression": "3 + 3"}')),
    )
    agent = PlannerAgent(gateway, MODEL, [calculator()], limits=AgentLimits(max_steps=3))
    result = asyncio.run(agent.arun("Add some numbers"))
    assert result.stop_reason == "max_steps" and result.steps == 3
    assert result.error == "the planner stopped at its max_steps limit after 3 steps"
    assert len(bodies(upstream)) == 3  # never a call past the limit
    assert isinstance(result.events[-1], FinalEvent)
    assert "Subtask 1 — Add numbers [failed]" in result.text
    assert "Subtask 2 — Report [skipped]" in result.text


def test_token_limits_cover_the_whole_run(gateway: Gateway, upstream: UpstreamServer) -> None:
    upstream.app.script(
        PATH,
        plan(("1", "Add numbers", [])),
        calls_stream(("calculator", '{"expression": "1 + 1"}')),
        calls_stream(("calculator", '{"expression": "2 + 2"}')),
    )
    agent = PlannerAgent(gateway, MODEL, [calculator()], limits=AgentLimits(max_tokens=60))
    result = asyncio.run(agent.arun("Add some numbers"))
    # 29 tokens a call: the plan and one subtask step leave 2 tokens; the second subtask step
    # runs out (the inner agent may cut it mid-stream) and no re-plan is tried past the limit
    assert result.stop_reason == "max_tokens" and result.usage.total_tokens >= 58
    assert len(bodies(upstream)) == 3
    assert "Subtask 1 — Add numbers [failed]" in result.text and "token limit" in result.text


def test_a_stalled_model_cannot_hang_the_run(gateway: Gateway, upstream: UpstreamServer) -> None:
    upstream.app.script(PATH, Reply(first_byte_delay=5.0, json={}))
    agent = PlannerAgent(gateway, MODEL, [], limits=AgentLimits(max_seconds=0.5))
    started = time.monotonic()
    result = asyncio.run(agent.arun("Anything"))
    assert result.stop_reason == "max_seconds"
    assert time.monotonic() - started < 3


def test_a_failing_model_ends_the_run_with_the_step_named(
    gateway: Gateway, upstream: UpstreamServer
) -> None:
    error = {"error": {"message": "bad request", "type": "invalid_request_error"}}
    upstream.app.script(PATH, Reply(status=400, json=error), Reply(status=400, json=error))
    result = asyncio.run(PlannerAgent(gateway, MODEL, []).arun("Anything"))
    assert result.stop_reason == "error"
    assert result.error is not None and result.error.startswith("planner step 2 (planning, fake/m)")
    assert "bad request" in result.error
    # the JSON-schema request was retried once without response_format
    sent = bodies(upstream)
    assert "response_format" in sent[0] and "response_format" not in sent[1]


def test_parse_plan_explains_what_is_wrong() -> None:
    with pytest.raises(PlanError, match="cycle"):
        parse_plan(
            '{"subtasks": [{"id": "1", "title": "a", "depends_on": ["2"]},'
            '{"id": "2", "title": "b", "depends_on": ["1"]}]}'
        )
    with pytest.raises(PlanError, match="repeated: 1"):
        parse_plan('[{"id": "1", "title": "a"}]', done=["1"])
    with pytest.raises(PlanError, match="most allowed is 2"):
        parse_plan(
            '[{"id": "1", "title": "a"}, {"id": "2", "title": "b"}, {"id": "3", "title": "c"}]',
            max_subtasks=2,
        )
    with pytest.raises(PlanError, match=r"subtasks\.0\.title"):
        parse_plan('{"subtasks": [{"id": "1"}]}')
    assert [s.id for s in parse_plan('[{"id": "x", "title": "a"}]')] == ["x"]


def test_approvals_inside_a_subtask_reach_the_caller(
    gateway: Gateway, upstream: UpstreamServer, tmp_path: Path
) -> None:
    asked: list[str] = []

    def approve(request: ApprovalRequest) -> bool:
        asked.append(request.tool)
        return True

    upstream.app.script(
        PATH,
        plan(("1", "Write the file", [])),
        calls_stream(("write_file", '{"path": "out.txt", "content": "hello"}')),
        answer("Wrote out.txt."),
        answer("Done: out.txt holds hello."),
    )
    tools = workspace_tools(tmp_path)
    agent = PlannerAgent(gateway, MODEL, tools, approval=ApprovalPolicy(approve))

    async def go() -> list[object]:
        return [e async for e in agent.astream("Write hello to out.txt")]

    events = asyncio.run(go())
    kinds = [type(e).__name__ for e in events if not isinstance(e, StepEvent | TextEvent)]
    assert kinds == [
        "PlanEvent",
        "SubtaskEvent",
        "ToolCallEvent",
        "ApprovalRequest",
        "ToolResultEvent",
        "SubtaskEvent",
        "FinalEvent",
    ]
    assert asked == ["write_file"] and (tmp_path / "out.txt").read_text() == "hello"
