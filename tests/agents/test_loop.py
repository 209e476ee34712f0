"""The agent loop against the fake OpenAI-compatible upstream, and once with the bundled model."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from hanlin.agents.events import ApprovalRequest, FinalEvent, ToolResultEvent
from hanlin.agents.loop import Agent, AgentLimits, ApprovalPolicy
from hanlin.agents.repair import repair_json
from hanlin.agents.tools.base import tool
from hanlin.config import load_settings
from hanlin.models.gateway import Gateway
from hanlin.models.types import ChatOptions
from hanlin.testing import recordings as rec
from hanlin.testing.upstream import Reply, UpstreamServer

PATH = "/v1/chat/completions"
MODEL = "fake/m"


def calls_stream(*calls: tuple[str, str]) -> Reply:
    """An OpenAI-shaped stream with one tool call per (name, arguments), at index 0, 1, …"""
    head = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": rec.CREATED}
    head["model"] = "gpt-4o-mini"

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        body = {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return "data: " + json.dumps(body)

    events = [chunk({"role": "assistant", "content": None})]
    for i, (name, args) in enumerate(calls):
        start = {"index": i, "id": f"call_{i}_{name}", "type": "function"}
        events.append(
            chunk({"tool_calls": [{**start, "function": {"name": name, "arguments": ""}}]})
        )
        for part in (args[: len(args) // 2], args[len(args) // 2 :]):
            events.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": part}}]}))
    events.append(chunk({}, "tool_calls"))
    usage = {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29}
    events.append("data: " + json.dumps({**head, "choices": [], "usage": usage}))
    events.append("data: [DONE]")
    return Reply(sse=events)


def answer(text: str = "Done.") -> Reply:
    return rec.openai_text_stream("openai", [text[:3], text[3:]])


def sent_messages(upstream: UpstreamServer, n: int) -> list[dict[str, Any]]:
    bodies = [body for path, _, body in upstream.app.requests if path == PATH]
    messages: list[dict[str, Any]] = bodies[n]["messages"]
    return messages


@tool
def get_weather(city: str) -> str:
    """The weather in a city.

    Args:
        city: the city's name
    """
    return f"18 °C and sunny in {city}"


def run(agent: Agent, task: str = "What is the weather in Paris?") -> Any:
    return asyncio.run(agent.arun(task))


def test_a_tool_call_round_trip_shows_the_result_to_the_model(
    gateway: Gateway, upstream: UpstreamServer
) -> None:
    upstream.app.script(PATH, calls_stream(("get_weather", '{"city": "Paris"}')), answer("Sunny."))
    result = run(Agent(gateway, MODEL, [get_weather], system="Be brief."))
    assert result.stop_reason == "answer" and result.text == "Sunny." and result.steps == 2
    second = sent_messages(upstream, 1)
    assert second[0] == {"role": "system", "content": "Be brief."}
    assert second[2]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert second[3]["role"] == "tool" and second[3]["tool_call_id"] == "call_0_get_weather"
    # the result is untrusted: delimited so the model reads it as data, not instructions
    assert second[3]["content"] == (
        '<untrusted source="tool:get_weather">\n18 °C and sunny in Paris\n</untrusted>'
    )
    assert sent_messages(upstream, 0)[-1]["content"] == "What is the weather in Paris?"
    assert result.usage.total_tokens == 58
    assert [type(e).__name__ for e in result.events][:3] == [
        "StepEvent",
        "ToolCallEvent",
        "ToolResultEvent",
    ]
    assert isinstance(result.events[-1], FinalEvent)


def test_the_recorded_vendor_tool_stream_runs_too(
    gateway: Gateway, upstream: UpstreamServer
) -> None:
    @tool
    def get_weather(location: str, unit: str = "celsius") -> str:
        """Weather."""
        return f"{location}: 20 {unit}"

    upstream.app.script(PATH, rec.openai_tool_stream("deepseek"), answer())
    result = run(Agent(gateway, MODEL, [get_weather]))
    assert result.tool_results[0].content == "杭州: 20 celsius"
    assert result.stop_reason == "answer"


def test_two_calls_in_one_step_run_in_parallel(gateway: Gateway, upstream: UpstreamServer) -> None:
    spans: list[tuple[float, float]] = []

    @tool
    async def slow(n: int) -> int:
        """Sleep, then echo."""
        started = time.perf_counter()
        await asyncio.sleep(0.5)
        spans.append((started, time.perf_counter()))
        return n

    upstream.app.script(PATH, calls_stream(("slow", '{"n": 1}'), ("slow", '{"n": 2}')), answer())
    result = run(Agent(gateway, MODEL, [slow]))
    assert [r.content for r in result.tool_results] == ["1", "2"]
    both = max(end for _, end in spans) - min(start for start, _ in spans)
    assert both < 0.9, both  # one after the other would take 1 s
    tool_msgs = [m for m in sent_messages(upstream, 1) if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_msgs] == ["call_0_slow", "call_1_slow"]


def test_malformed_arguments_are_repaired(gateway: Gateway, upstream: UpstreamServer) -> None:
    upstream.app.script(PATH, calls_stream(("get_weather", "{city: 'Paris',}")), answer())
    result = run(Agent(gateway, MODEL, [get_weather]))
    assert result.tool_results[0].content == "18 °C and sunny in Paris"
    assert not result.tool_results[0].is_error


def test_invalid_arguments_go_back_and_the_second_try_works(
    gateway: Gateway, upstream: UpstreamServer
) -> None:
    upstream.app.script(
        PATH,
        calls_stream(("get_weather", '{"town": "Paris"}')),
        calls_stream(("get_weather", '{"city": "Paris"}')),
        answer(),
    )
    result = run(Agent(gateway, MODEL, [get_weather]))
    first, second = result.tool_results
    assert first.is_error and "invalid arguments" in first.content
    assert "send the call again" in first.content and "city" in first.content
    assert not second.is_error and result.stop_reason == "answer"
    assert "invalid arguments" in sent_messages(upstream, 1)[-1]["content"]


def test_repairs_are_bounded(gateway: Gateway, upstream: UpstreamServer) -> None:
    bad = calls_stream(("get_weather", "not json at all"))
    upstream.app.script(PATH, bad, bad, bad, answer())
    result = run(Agent(gateway, MODEL, [get_weather], max_repairs=2))
    contents = [r.content for r in result.tool_results]
    assert ["send the call again" in c for c in contents] == [True, True, False]
    assert "gave up after 2 retries" in contents[2]
    assert result.stop_reason == "answer"


def test_unknown_tools_get_the_list_of_tools(gateway: Gateway, upstream: UpstreamServer) -> None:
    upstream.app.script(PATH, calls_stream(("get_wether", "{}")), answer())
    result = run(Agent(gateway, MODEL, [get_weather]))
    assert result.tool_results[0].is_error
    assert "unknown tool 'get_wether'" in result.tool_results[0].content
    assert "get_weather" in result.tool_results[0].content


def test_a_raising_tool_becomes_an_error_the_model_sees(
    gateway: Gateway, upstream: UpstreamServer
) -> None:
    @tool
    def explode() -> str:
        """Always fails."""
        raise RuntimeError("disk on fire")

    upstream.app.script(PATH, calls_stream(("explode", "{}")), answer())
    result = run(Agent(gateway, MODEL, [explode]))
    assert result.tool_results[0].is_error
    assert "disk on fire" in sent_messages(upstream, 1)[-1]["content"]
    assert result.stop_reason == "answer"


def test_a_hanging_tool_times_out_at_the_cap(gateway: Gateway, upstream: UpstreamServer) -> None:
    @tool(timeout=None)
    async def hang() -> str:
        """Never returns."""
        await asyncio.Event().wait()
        return "never"

    upstream.app.script(PATH, calls_stream(("hang", "{}")), answer())
    started = time.perf_counter()
    result = run(Agent(gateway, MODEL, [hang], limits=AgentLimits(tool_timeout=0.3)))
    assert time.perf_counter() - started < 3
    res = result.tool_results[0]
    assert res.is_error and "timed out after 0.3 s" in res.content and res.seconds < 1
    assert result.stop_reason == "answer"


def test_max_seconds_stops_a_run_stuck_in_a_tool(
    gateway: Gateway, upstream: UpstreamServer
) -> None:
    @tool(timeout=None)
    async def hang() -> str:
        """Never returns."""
        await asyncio.Event().wait()
        return "never"

    upstream.app.script(PATH, calls_stream(("hang", "{}")))
    started = time.perf_counter()
    result = run(Agent(gateway, MODEL, [hang], limits=AgentLimits(max_seconds=0.5)))
    assert result.stop_reason == "max_seconds" and time.perf_counter() - started < 2


def test_max_steps_stops_a_model_that_always_calls_tools(
    gateway: Gateway, upstream: UpstreamServer
) -> None:
    loop = calls_stream(("get_weather", '{"city": "Paris"}'))
    upstream.app.script(PATH, *[loop] * 5)
    result = run(Agent(gateway, MODEL, [get_weather], limits=AgentLimits(max_steps=3)))
    assert result.stop_reason == "max_steps" and result.steps == 3
    assert len(result.tool_results) == 3
    assert len([r for r in upstream.app.requests if r[0] == PATH]) == 3


def test_max_tokens_stops_the_run(gateway: Gateway, upstream: UpstreamServer) -> None:
    loop = calls_stream(("get_weather", '{"city": "Paris"}'))
    upstream.app.script(PATH, *[loop] * 5)
    result = run(Agent(gateway, MODEL, [get_weather], limits=AgentLimits(max_tokens=50)))
    assert result.stop_reason == "max_tokens" and result.steps == 2


WRITES: list[str] = []


@tool(side_effects=("writes",))
def write_file(path: str, text: str) -> str:
    """Write a file."""
    WRITES.append(path)
    return f"wrote {len(text)} characters to {path}"


def test_a_writing_tool_is_denied_without_approval(
    gateway: Gateway, upstream: UpstreamServer
) -> None:
    WRITES.clear()
    upstream.app.script(PATH, calls_stream(("write_file", '{"path": "a.txt", "text": "hi"}')))
    result = run(Agent(gateway, MODEL, [write_file]))
    assert WRITES == []
    res = result.tool_results[0]
    assert res.is_error and "not approved" in res.content and "requires approval" in res.content
    assert any(isinstance(e, ApprovalRequest) for e in result.events)


@pytest.mark.parametrize("is_async", [False, True])
def test_a_writing_tool_runs_with_an_approving_callback(
    gateway: Gateway, upstream: UpstreamServer, is_async: bool
) -> None:
    WRITES.clear()
    seen: list[ApprovalRequest] = []

    def approve(request: ApprovalRequest) -> bool:
        seen.append(request)
        return True

    async def approve_async(request: ApprovalRequest) -> bool:
        return approve(request)

    callback: Callable[[ApprovalRequest], Any] = approve_async if is_async else approve
    upstream.app.script(PATH, calls_stream(("write_file", '{"path": "a.txt", "text": "hi"}')))
    agent = Agent(gateway, MODEL, [write_file], approval=ApprovalPolicy(approve=callback))
    result = run(agent)
    assert WRITES == ["a.txt"] and result.tool_results[0].content.startswith("wrote 2")
    assert seen[0].tool == "write_file" and seen[0].arguments == {"path": "a.txt", "text": "hi"}
    assert seen[0].side_effects == {"writes"} and seen[0].decision.result() is True


def test_auto_approve_skips_the_question(gateway: Gateway, upstream: UpstreamServer) -> None:
    WRITES.clear()
    upstream.app.script(PATH, calls_stream(("write_file", '{"path": "b.txt", "text": "x"}')))
    agent = Agent(
        gateway, MODEL, [write_file], approval=ApprovalPolicy(auto_approve={"write_file"})
    )
    result = run(agent)
    assert WRITES == ["b.txt"] and not any(isinstance(e, ApprovalRequest) for e in result.events)


def test_a_500_from_the_upstream_ends_with_an_error(
    gateway: Gateway, upstream: UpstreamServer
) -> None:
    upstream.app.script(PATH, *[Reply(status=500, json={"error": {"message": "boom"}})] * 3)
    started = time.perf_counter()
    result = run(Agent(gateway, MODEL, [get_weather]))
    assert time.perf_counter() - started < 5
    assert result.stop_reason == "error" and result.error is not None
    assert "agent step 1" in result.error and "fake/m" in result.error
    assert isinstance(result.events[-1], FinalEvent)


def test_astream_yields_text_as_it_comes(gateway: Gateway, upstream: UpstreamServer) -> None:
    upstream.app.script(PATH, answer("Hello there"))

    async def collect() -> list[Any]:
        return [e async for e in Agent(gateway, MODEL, []).astream("hi")]

    events = asyncio.run(collect())
    assert "".join(e.text for e in events if e.type == "text") == "Hello there"
    assert events[-1].type == "final" and events[-1].stop_reason == "answer"


def test_sync_run(gateway: Gateway, upstream: UpstreamServer) -> None:
    upstream.app.script(PATH, calls_stream(("get_weather", '{"city": "Oslo"}')), answer())
    result = Agent(gateway, MODEL, [get_weather]).run("weather?")
    assert result.tool_results[0].content == "18 °C and sunny in Oslo"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{city: 'Paris',}", {"city": "Paris"}),
        ('```json\n{"a": 1}\n```', {"a": 1}),
        ('{"a": True, "b": None, "c": False} hope this helps', {"a": True, "b": None, "c": False}),
        ('{"a": [1, 2,', {"a": [1, 2]}),
        ('Sure: {"n": -1.5e3}', {"n": -1500.0}),
    ],
)
def test_repair_json(text: str, expected: Any) -> None:
    assert repair_json(text) == expected


def test_repair_json_gives_up_with_a_reason() -> None:
    with pytest.raises(ValueError, match="no JSON object"):
        repair_json("the weather is nice")


# --- the real bundled model --------------------------------------------------------------------


@pytest.mark.slow
def test_the_bundled_model_runs_a_forced_tool_call(tmp_path: Any) -> None:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (hanlin[local])")
    from hanlin.models.providers.llamacpp import bundled_model_path

    local = {"provider": "llamacpp", "options": {"model_path": str(bundled_model_path(tmp_path))}}
    gw = Gateway(load_settings(models={"endpoints": {"local": local}}))

    @tool
    def add(a: int, b: int) -> int:
        """Add two whole numbers.

        Args:
            a: the first number
            b: the second number
        """
        return a + b

    agent = Agent(
        gw,
        "local/gemma3-270m",
        [add],
        limits=AgentLimits(max_steps=3, max_seconds=60),
        options=ChatOptions(temperature=0, max_tokens=48),
        first_tool_choice="required",
    )
    try:
        result = gw.run_sync(agent.arun("What is 2 + 3? Use the add tool."))
    finally:
        gw.close()
    first = result.tool_results[0]
    assert isinstance(first, ToolResultEvent) and first.name == "add" and not first.is_error
    assert int(first.content) == sum(json.loads(result.events[1].arguments).values())
    assert result.stop_reason in ("answer", "max_steps")
