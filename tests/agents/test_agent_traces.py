"""An agent run as a trace: ``invoke_agent`` with its model calls and tool calls as children,
tool arguments and results recorded, a failing tool marked as an error — through the sync API,
whose steps run on the gateway's own thread."""

from __future__ import annotations

from hanlin.agents.loop import Agent
from hanlin.agents.tools.base import tool
from hanlin.models.gateway import Gateway
from hanlin.testing.upstream import UpstreamServer
from hanlin.tracing import setup
from tests.agents.test_loop import MODEL, PATH, answer, calls_stream, get_weather


@tool
def broken(x: int) -> int:
    """Always fails."""
    raise ValueError("the sensor is offline")


def test_an_agent_run_is_one_trace_of_model_and_tool_calls(
    gateway: Gateway, upstream: UpstreamServer
) -> None:
    upstream.app.script(
        PATH,
        calls_stream(("get_weather", '{"city": "Paris"}'), ("broken", '{"x": 1}')),
        answer("Sunny."),
    )
    result = Agent(gateway, MODEL, [get_weather, broken]).run("Weather in Paris?")
    assert result.stop_reason == "answer"
    assert setup.flush(10)
    store = setup.current_store()
    assert store is not None
    from hanlin.tracing import TraceQuery

    (trace,) = [t for t in store.list_traces(TraceQuery()) if t.name.startswith("invoke_agent")]
    spans = store.get_trace(trace.trace_id)
    root = next(s for s in spans if s.parent_id is None)
    children = sorted((s.name, s.parent_id == root.span_id) for s in spans if s is not root)
    assert children == [
        (f"chat {MODEL}", True),
        (f"chat {MODEL}", True),
        ("execute_tool broken", True),
        ("execute_tool get_weather", True),
    ]
    weather = next(s for s in spans if s.name == "execute_tool get_weather")
    assert weather.attributes["gen_ai.tool.name"] == "get_weather"
    assert "Paris" in weather.attributes["gen_ai.tool.call.arguments"]
    assert "sunny in Paris" in weather.attributes["gen_ai.tool.call.result"]
    failed = next(s for s in spans if s.name == "execute_tool broken")
    assert failed.status == "error" and "sensor is offline" in (failed.error or "")
    assert root.attributes["hanlin.agent.stop_reason"] == "answer"
    assert trace.input_tokens == 38 and trace.status == "error"  # a tool failed inside


def test_a_planner_run_is_a_tree_of_plan_subtasks_and_report(
    gateway: Gateway, upstream: UpstreamServer
) -> None:
    from hanlin.agents.planner import PlannerAgent
    from hanlin.tracing import TraceQuery
    from tests.agents.test_planner import plan

    upstream.app.script(
        PATH,
        plan(("1", "Find the weather in Paris", []), ("2", "Check the sensor", ["1"])),
        calls_stream(("get_weather", '{"city": "Paris"}')),
        answer("Paris: sunny."),
        answer("FAILED: the sensor is offline"),
        plan(),  # the re-plan after subtask 2 failed: nothing more to do
        answer("Paris is sunny."),
    )
    result = PlannerAgent(gateway, MODEL, [get_weather], max_replans=1).run("Paris weather?")
    assert result.stop_reason == "answer", result.error
    assert setup.flush(10)
    store = setup.current_store()
    assert store is not None
    (trace,) = [t for t in store.list_traces(TraceQuery()) if t.name.startswith("invoke_agent")]
    spans = store.get_trace(trace.trace_id)
    by_id = {s.span_id: s for s in spans}
    root = next(s for s in spans if s.parent_id is None)
    assert root.attributes["hanlin.agent.mode"] == "planner"
    assert root.attributes["hanlin.agent.stop_reason"] == "answer"

    def parent(name: str) -> str:
        (s,) = [s for s in spans if s.name == name]
        return by_id[s.parent_id].name if s.parent_id else ""

    # each subtask under the run, its own agent run under the subtask, its tools under that
    assert parent("subtask 1") == parent("subtask 2") == root.name
    inner = [s for s in spans if s.name.startswith("invoke_agent") and s is not root]
    assert sorted(by_id[s.parent_id or ""].name for s in inner) == ["subtask 1", "subtask 2"]
    tool_call = next(s for s in spans if s.name == "execute_tool get_weather")
    assert by_id[tool_call.parent_id or ""] in inner
    # every model call sits under the run (plan, re-plan, report) or a subtask's agent run
    calls = [s for s in spans if s.name == f"chat {MODEL}"]
    assert {by_id[s.parent_id or ""].name for s in calls} == {root.name}
    assert sum(s.parent_id == root.span_id for s in calls) >= 2
    assert sum(by_id[s.parent_id or ""] in inner for s in calls) == 3
    done = next(s for s in spans if s.name == "subtask 1")
    failed = next(s for s in spans if s.name == "subtask 2")
    assert done.status == "ok" and "Paris: sunny." in done.attributes["hanlin.subtask.result"]
    assert failed.status == "error" and "sensor is offline" in (failed.error or "")
