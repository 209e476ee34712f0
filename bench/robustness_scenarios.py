"""The scenarios of the robustness suite (``bench/agent_robustness.py``): a scripted model
(replies of the fake OpenAI-compatible upstream), tools, limits, and what a correct ending is.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hanlin.agents.events import AgentResult, StopReason
from hanlin.agents.loop import AgentLimits
from hanlin.agents.tools.base import ToolResult
from hanlin.testing import recordings as rec
from hanlin.testing.upstream import Reply
from robustness_tools import (
    ToolsFactory,
    _add,
    _bad_str,
    _block_loop,
    _circular,
    _exiting,
    _fast_sync,
    _hang_async,
    _hang_forever,
    _hang_sync,
    _hanlin_error,
    _huge,
    _odd_values,
    _raising,
    _slow,
    _stubborn,
    _tools,
    _weather,
    mcp_tools,
)

Check = Callable[[AgentResult], None]
PATH = "/v1/chat/completions"
MODEL = "fake/m"


@dataclass
class Scenario:
    """A scripted model, tools, limits, and what a correct ending looks like."""

    name: str
    group: str
    replies: list[Reply]
    tools: ToolsFactory
    expect: tuple[StopReason, ...] = ("answer",)
    limits: AgentLimits = field(default_factory=lambda: AgentLimits(max_steps=6, max_seconds=10))
    check: Check | None = None
    budget: float = 10.0
    max_repairs: int = 2
    prices: bool = False


# --- scripting the model ---------------------------------------------------------------------

_HEAD = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1, "model": "m"}
_USAGE = {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29}


def _chunk(delta: dict[str, Any], finish: str | None = None) -> str:
    body = {**_HEAD, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return "data: " + json.dumps(body)


def call_events(*calls: tuple[str, str]) -> list[str]:
    """SSE events of one streamed step with these (name, raw arguments) tool calls."""
    events = [_chunk({"role": "assistant", "content": None})]
    for i, (name, args) in enumerate(calls):
        start = {"index": i, "id": f"call_{i}", "type": "function"}
        events.append(
            _chunk({"tool_calls": [{**start, "function": {"name": name, "arguments": ""}}]})
        )
        for part in (args[: len(args) // 2], args[len(args) // 2 :]):
            events.append(_chunk({"tool_calls": [{"index": i, "function": {"arguments": part}}]}))
    events.append(_chunk({}, "tool_calls"))
    events.append("data: " + json.dumps({**_HEAD, "choices": [], "usage": _USAGE}))
    events.append("data: [DONE]")
    return events


def calls(*c: tuple[str, str]) -> Reply:
    return Reply(sse=call_events(*c))


def answer(text: str = "Done.") -> Reply:
    return rec.openai_text_stream("openai", [text[:3], text[3:]])


def one_call(name: str, args: str) -> list[Reply]:
    """The model calls once, then answers after reading the result."""
    return [calls((name, args)), answer()]


# --- checks ----------------------------------------------------------------------------------


def first_result(result: AgentResult) -> ToolResult | Any:
    if not result.tool_results:
        raise AssertionError("no tool result")
    return result.tool_results[0]


def result_ok(contains: str = "") -> Check:
    def check(result: AgentResult) -> None:
        r = first_result(result)
        if r.is_error or contains not in r.content:
            raise AssertionError(f"expected a good result with {contains!r}: {r.content[:200]!r}")

    return check


def result_error(*contains: str) -> Check:
    def check(result: AgentResult) -> None:
        r = first_result(result)
        if not r.is_error or not all(c in r.content for c in contains):
            raise AssertionError(f"expected an error result with {contains}: {r.content[:300]!r}")

    return check


def all_checks(*checks: Check) -> Check:
    def check(result: AgentResult) -> None:
        for c in checks:
            c(result)

    return check


def error_mentions(*words: str) -> Check:
    def check(result: AgentResult) -> None:
        if not result.error or not all(w in result.error for w in words):
            raise AssertionError(f"expected an error naming {words}: {result.error!r}")

    return check


# --- the scenarios ---------------------------------------------------------------------------

W, ADD = "get_weather", "add"


def _args(name: str, raw: str, check: Check | None = None, **kw: Any) -> Scenario:
    return Scenario(
        f"args_{name}", "arguments", one_call(W, raw), _tools(_weather), check=check, **kw
    )


REPAIRED = result_ok("Paris")
SENT_BACK = result_error("invalid arguments")


def scenarios() -> list[Scenario]:
    """The suite, in report order."""
    L = AgentLimits
    s: list[Scenario] = [
        # malformed JSON arguments: repaired, or sent back with the reason
        _args("single_quotes", "{'city': 'Paris'}", REPAIRED),
        _args("trailing_comma", '{"city": "Paris",}', REPAIRED),
        _args("unquoted_keys", '{city: "Paris"}', REPAIRED),
        _args("code_fence", '```json\n{"city": "Paris"}\n```', REPAIRED),
        _args("trailing_prose", '{"city": "Paris"} I hope this helps!', REPAIRED),
        _args("python_literals", "{'city': 'Paris', 'metric': True}", REPAIRED),
        _args("truncated_object", '{"city": "Paris", "metric": tr', result_error("metric")),
        _args("unclosed_string", '{"city": "Paris', result_ok("Paris")),
        _args("not_json_at_all", "the weather in Paris please", SENT_BACK),
        _args("empty_string", "", SENT_BACK),
        _args("json_array", '["Paris"]', SENT_BACK),
        _args("json_null", "null", SENT_BACK),
        _args("deeply_nested", "[" * 100_000, SENT_BACK),
        _args("huge_argument", json.dumps({"city": "P" * 2_000_000}), result_ok("PPP")),
        _args("lone_surrogate", '{"city": "Par\\ud800is"}', None, expect=("answer", "error")),
        # well-formed JSON, wrong shape
        Scenario(
            "type_string_for_int",
            "types",
            one_call(ADD, '{"a": "two", "b": 3}'),
            _tools(_add),
            check=result_error("invalid arguments", "a"),
        ),
        Scenario(
            "type_coercible_string",
            "types",
            one_call(ADD, '{"a": "2", "b": 3}'),
            _tools(_add),
            check=result_ok("5"),
        ),
        Scenario(
            "type_missing_required",
            "types",
            one_call(ADD, '{"a": 1}'),
            _tools(_add),
            check=result_error("b", "required"),
        ),
        Scenario(
            "type_extra_argument",
            "types",
            one_call(ADD, '{"a": 1, "b": 2, "c": 3}'),
            _tools(_add),
            check=result_error("c"),
        ),
        Scenario(
            "type_wrong_list_items",
            "types",
            one_call(ADD, '{"a": 1, "b": 2, "extra": ["x", {}]}'),
            _tools(_add),
            check=result_error("extra"),
        ),
        # tools that fail
        Scenario(
            "tool_raises",
            "tools",
            one_call("explode", "{}"),
            _tools(_raising),
            check=result_error("disk on fire"),
        ),
        Scenario(
            "tool_calls_sys_exit",
            "tools",
            one_call("legacy_cli", "{}"),
            _tools(_exiting),
            check=result_error("legacy_cli"),
        ),
        Scenario(
            "tool_raises_hanlin_error",
            "tools",
            one_call("lookup", '{"key": "k"}'),
            _tools(_hanlin_error),
            check=result_error("no entry 'k'"),
        ),
        Scenario(
            "tool_hangs_async",
            "tools",
            one_call("hang_async", "{}"),
            _tools(_hang_async),
            check=result_error("timed out"),
            budget=5,
        ),
        Scenario(
            "tool_hangs_sync",
            "tools",
            one_call("hang_sync", "{}"),
            _tools(_hang_sync),
            check=result_error("timed out"),
            budget=5,
        ),
        Scenario(
            "tool_blocks_event_loop",
            "tools",
            one_call("blocks_loop", "{}"),
            _tools(_block_loop),
            budget=5,
        ),
        Scenario(
            "tool_hangs_no_timeout",
            "tools",
            [calls(("hang_forever", "{}"))],
            _tools(_hang_forever),
            expect=("max_seconds",),
            limits=L(max_steps=6, max_seconds=1.0),
            budget=5,
        ),
        Scenario(
            "tool_ignores_cancellation",
            "tools",
            one_call("stubborn", "{}"),
            _tools(_stubborn),
            check=result_error("timed out"),
            budget=5,
        ),
        Scenario(
            "tool_huge_output",
            "tools",
            one_call("dump", "{}"),
            _tools(_huge),
            expect=("answer", "error"),
            budget=20,
        ),
        Scenario(
            "tool_non_json_values",
            "tools",
            one_call("odd", "{}"),
            _tools(_odd_values),
            check=result_ok("set"),
        ),
        Scenario(
            "tool_circular_value",
            "tools",
            one_call("circular", "{}"),
            _tools(_circular),
            check=result_error("circular"),
        ),
        Scenario(
            "tool_value_str_raises",
            "tools",
            one_call("evil", "{}"),
            _tools(_bad_str),
            check=result_error("cannot print me"),
        ),
        # calls to tools that do not exist
        Scenario(
            "unknown_tool",
            "names",
            one_call("get_wether", "{}"),
            _tools(_weather),
            check=result_error("unknown tool", W),
        ),
        Scenario(
            "empty_tool_name",
            "names",
            one_call("", "{}"),
            _tools(_weather),
            check=result_error("unknown tool"),
        ),
        Scenario(
            "hostile_tool_name",
            "names",
            one_call("../../etc/passwd" + "x" * 5000, "{}"),
            _tools(_weather),
            check=result_error("unknown tool"),
        ),
        # a model that never stops
        Scenario(
            "loop_max_steps",
            "loops",
            [calls((W, '{"city": "Paris"}'))] * 8,
            _tools(_weather),
            expect=("max_steps",),
            limits=L(max_steps=4),
        ),
        Scenario(
            "loop_max_seconds",
            "loops",
            [calls(("slow", "{}"))] * 20,
            _tools(_slow),
            expect=("max_seconds",),
            limits=L(max_steps=50, max_seconds=1.0),
            budget=5,
        ),
        Scenario(
            "loop_max_tokens",
            "loops",
            [calls((W, '{"city": "Paris"}'))] * 8,
            _tools(_weather),
            expect=("max_tokens",),
            limits=L(max_steps=50, max_tokens=80),
        ),
        Scenario(
            "loop_max_cost",
            "loops",
            [calls((W, '{"city": "Paris"}'))] * 8,
            _tools(_weather),
            expect=("max_cost",),
            limits=L(max_steps=50, max_cost_usd=0.05),
            prices=True,
        ),
        Scenario(
            "loop_invalid_args_forever",
            "loops",
            [calls((W, "garbage"))] * 8,
            _tools(_weather),
            expect=("max_steps",),
            limits=L(max_steps=5),
            check=lambda r: _gave_up(r),
        ),
        # several calls in one step
        Scenario(
            "parallel_one_hangs",
            "parallel",
            [calls(("hang_async", "{}"), (W, '{"city": "Paris"}')), answer()],
            _tools(_hang_async, _weather),
            check=lambda r: _mixed(r, ["timed out"], ["Paris"]),
            budget=5,
        ),
        Scenario(
            "parallel_one_raises",
            "parallel",
            [calls(("explode", "{}"), (W, '{"city": "Oslo"}')), answer()],
            _tools(_raising, _weather),
            check=lambda r: _mixed(r, ["disk on fire"], ["Oslo"]),
        ),
        Scenario(
            "parallel_sync_hangs_starve_pool",
            "parallel",
            [calls(*[("hang_sync", "{}")] * 12), calls(("fast_sync", "{}")), answer()],
            _tools(_hang_sync, _fast_sync),
            check=lambda r: _last_ok(r, "fast"),
            budget=8,
        ),
        Scenario(
            "parallel_40_calls",
            "parallel",
            [calls(*[(W, json.dumps({"city": f"C{i}"})) for i in range(40)]), answer()],
            _tools(_weather),
            check=lambda r: _count_ok(r, 40),
        ),
        # the model itself fails
        Scenario(
            "model_500",
            "model",
            [Reply(status=500, json={"error": {"message": "boom"}})],
            _tools(_weather),
            expect=("error",),
            check=error_mentions("agent step 1"),
        ),
        Scenario(
            "model_429",
            "model",
            [
                Reply(
                    status=429,
                    headers={"Retry-After": "30"},
                    json={"error": {"message": "rate limited"}},
                )
            ],
            _tools(_weather),
            expect=("error",),
            check=error_mentions("agent step 1"),
        ),
        Scenario(
            "model_stream_dies_mid_call",
            "model",
            [
                calls((W, '{"city": "Paris"}')),
                Reply(sse=call_events((W, '{"city": "Lyon"}')), reset_after=3),
            ],
            _tools(_weather),
            expect=("error",),
            check=error_mentions("agent step 2"),
        ),
        Scenario(
            "model_never_answers",
            "model",
            [Reply(first_byte_delay=30, json={})],
            _tools(_weather),
            expect=("max_seconds", "error"),
            limits=L(max_seconds=1.0),
            budget=5,
        ),
        Scenario(
            "model_stalls_mid_stream",
            "model",
            [Reply(sse=call_events((W, '{"city": "Paris"}')), chunk_delay=2.0)],
            _tools(_weather),
            expect=("max_seconds", "error"),
            limits=L(max_seconds=1.0),
            budget=5,
        ),
        Scenario(
            "model_answer_overruns_max_tokens",
            "model",
            [rec.openai_text_stream("openai", ["word "] * 2000)],
            _tools(_weather),
            expect=("max_tokens",),
            limits=L(max_tokens=100),
        ),
        Scenario(
            "model_malformed_body",
            "model",
            [Reply(sse=["data: {not json", "data: [DONE]"])],
            _tools(_weather),
            expect=("error",),
        ),
        # MCP servers misbehaving
        Scenario(
            "mcp_tool_call_works",
            "mcp",
            one_call("hostile__echo", '{"text": "hi"}'),
            mcp_tools(),
            check=result_ok("echo: hi"),
            budget=20,
        ),
        Scenario(
            "mcp_server_dies_mid_call",
            "mcp",
            [
                calls(("hostile__crash", "{}")),
                calls(("hostile__echo", '{"text": "again"}')),
                answer(),
            ],
            mcp_tools(),
            check=all_checks(
                result_error("closed the connection"), lambda r: _last_ok(r, "echo: again")
            ),
            budget=20,
        ),
        Scenario(
            "mcp_tool_hangs",
            "mcp",
            one_call("hostile__sleep", '{"seconds": 30}'),
            mcp_tools(),
            check=result_error("timed out"),
            budget=20,
        ),
        Scenario(
            "mcp_tool_raises",
            "mcp",
            one_call("hostile__boom", "{}"),
            mcp_tools(),
            check=result_error("Error executing tool boom"),
            budget=20,
        ),
        Scenario(
            "mcp_server_will_not_start",
            "mcp",
            one_call("hostile__echo", '{"text": "x"}'),
            mcp_tools(command="/nonexistent/mcp-server"),
            check=result_error("unknown tool"),
            budget=20,
        ),
        Scenario(
            "mcp_server_hangs_at_start",
            "mcp",
            one_call("hostile__echo", '{"text": "x"}'),
            mcp_tools(mode="hang"),
            check=result_error("unknown tool"),
            budget=20,
        ),
    ]
    return s


def _gave_up(result: AgentResult) -> None:
    if not any("gave up" in r.content for r in result.tool_results):
        raise AssertionError("the repairs were not bounded")


def _mixed(result: AgentResult, bad: list[str], good: list[str]) -> None:
    errors = [r for r in result.tool_results if r.is_error]
    oks = [r for r in result.tool_results if not r.is_error]
    if len(errors) != 1 or len(oks) != 1:
        raise AssertionError(f"expected one error and one result: {result.tool_results}")
    if not all(b in errors[0].content for b in bad) or not all(g in oks[0].content for g in good):
        raise AssertionError(f"unexpected results: {result.tool_results}")


def _last_ok(result: AgentResult, text: str) -> None:
    last = result.tool_results[-1] if result.tool_results else None
    if last is None or last.is_error or text not in last.content:
        raise AssertionError(f"the last call should have worked: {last}")


def _count_ok(result: AgentResult, n: int) -> None:
    good = [r for r in result.tool_results if not r.is_error]
    if len(good) != n:
        raise AssertionError(f"{len(good)} of {n} calls worked")
