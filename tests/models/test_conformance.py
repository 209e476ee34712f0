"""One conformance suite over every remote provider shape: the same cases must pass for each.

Each case replays a response recorded from the real API (OpenAI, DeepSeek, Qwen, Moonshot,
Zhipu through ``openai_compat``; Anthropic through ``anthropic``) from a real local HTTP server,
through the whole gateway, and checks what a caller sees: joined text, tool calls with exact
arguments, usage (including cached tokens), finish reasons and typed errors.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from hanlin.models.errors import (
    AuthenticationError,
    ContextTooLongError,
    RateLimitError,
    UpstreamUnavailableError,
)
from hanlin.models.gateway import Gateway
from hanlin.models.types import StreamAccumulator, Tool
from hanlin.testing import recordings as rec
from hanlin.testing.upstream import Reply, UpstreamServer


@dataclass(frozen=True)
class Vendor:
    endpoint: str
    key_env: str
    path: str
    text: Callable[[], Reply]
    text_stream: Callable[[], Reply]
    tool: Callable[[], Reply]
    tool_stream: Callable[[], Reply]
    rate_limited: Callable[[], Reply]
    unauthorized: Callable[[], Reply]
    context_too_long: Callable[[], Reply] | None


def _openai_vendor(vendor: str, endpoint: str, key_env: str) -> Vendor:
    return Vendor(
        endpoint,
        key_env,
        "/v1/chat/completions",
        lambda: rec.openai_text(vendor),
        lambda: rec.openai_text_stream(vendor),
        lambda: rec.openai_tool_call(vendor),
        lambda: rec.openai_tool_stream(vendor),
        lambda: rec.openai_error(
            429, "rate_limit_exceeded", "Rate limit reached", **{"retry-after": "0.05"}
        ),
        lambda: rec.openai_error(401, "invalid_api_key", "Incorrect API key provided"),
        lambda: rec.openai_error(400, "context_length_exceeded", "maximum context length is 8192"),
    )


VENDORS = {
    "openai": _openai_vendor("openai", "openai", "OPENAI_API_KEY"),
    "deepseek": _openai_vendor("deepseek", "deepseek", "DEEPSEEK_API_KEY"),
    "qwen": _openai_vendor("qwen", "qwen", "DASHSCOPE_API_KEY"),
    "moonshot": _openai_vendor("moonshot", "moonshot", "MOONSHOT_API_KEY"),
    "zhipu": _openai_vendor("zhipu", "zhipu", "ZHIPUAI_API_KEY"),
    "anthropic": Vendor(
        "anthropic",
        "ANTHROPIC_API_KEY",
        "/v1/messages",
        rec.anthropic_text,
        rec.anthropic_text_stream,
        rec.anthropic_tool_call,
        rec.anthropic_tool_stream,
        lambda: rec.anthropic_error(
            429, "rate_limit_error", "Rate limited", **{"retry-after": "0.05"}
        ),
        lambda: rec.anthropic_error(401, "authentication_error", "invalid x-api-key"),
        lambda: rec.anthropic_error(413, "request_too_large", "Request exceeds the maximum size"),
    ),
}

SECRET = "sk-conformance-0123456789abcdef"
WEATHER = Tool(
    name="get_weather",
    description="Current weather for a city",
    parameters={
        "type": "object",
        "properties": {"location": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
        "required": ["location"],
    },
)


@pytest.fixture(params=sorted(VENDORS))
def vendor(request: pytest.FixtureRequest) -> Vendor:
    return VENDORS[request.param]


@pytest.fixture()
def gw(vendor: Vendor, make_gateway: Callable[..., Gateway]) -> Gateway:
    return make_gateway((vendor.endpoint,), keys={vendor.key_env: SECRET}, retries=1)


def _model(vendor: Vendor) -> str:
    return f"{vendor.endpoint}/any-model"


@pytest.fixture(autouse=True)
def _open_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the suite use a made-up model name on every endpoint."""
    import hanlin.models.catalog as catalog

    real = catalog.Endpoint.model

    def lenient(self: catalog.Endpoint, name: str) -> catalog.ModelInfo | None:
        return real(self, name) or catalog.ModelInfo(name, supports_images=True)

    monkeypatch.setattr(catalog.Endpoint, "model", lenient)


def test_streamed_text_joins_and_reports_usage(
    vendor: Vendor, gw: Gateway, upstream: UpstreamServer
) -> None:
    upstream.app.script(vendor.path, vendor.text_stream())
    stream = gw.stream("Say hello", _model(vendor))
    deltas = [e.text for e in stream if e.type == "text"]
    assert "".join(deltas) == rec.TEXT
    assert len(deltas) >= 3, "text must arrive incrementally, not in one piece"
    resp = stream.response
    assert resp is not None
    assert resp.finish_reason == "stop"
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (19, 10)


def test_non_streamed_text(vendor: Vendor, gw: Gateway, upstream: UpstreamServer) -> None:
    upstream.app.script(vendor.path, vendor.text())
    resp = gw.chat("Say hello", _model(vendor))
    assert resp.text == rec.TEXT
    assert resp.finish_reason == "stop"
    assert resp.usage.total_tokens == 29
    assert resp.served_by == _model(vendor)


def test_streamed_tool_call_arguments_are_exact(
    vendor: Vendor, gw: Gateway, upstream: UpstreamServer
) -> None:
    upstream.app.script(vendor.path, vendor.tool_stream())
    acc = StreamAccumulator()
    for event in gw.stream("Weather in Hangzhou?", _model(vendor), tools=[WEATHER]):
        acc.add(event)
    assert acc.finish_reason == "tool_calls"
    [call] = acc.tool_calls
    assert call.name == "get_weather"
    assert call.id, "a tool call needs an id to answer it"
    assert json.loads(call.arguments) == json.loads(rec.TOOL_ARGS)
    sent = upstream.app.requests[-1][2]
    assert "get_weather" in json.dumps(sent["tools"])


def test_non_streamed_tool_call(vendor: Vendor, gw: Gateway, upstream: UpstreamServer) -> None:
    upstream.app.script(vendor.path, vendor.tool())
    resp = gw.chat(
        "Weather in Hangzhou?", _model(vendor), tools=[WEATHER], tool_choice="get_weather"
    )
    assert resp.finish_reason == "tool_calls"
    [call] = resp.tool_calls
    assert (call.name, json.loads(call.arguments)) == ("get_weather", json.loads(rec.TOOL_ARGS))
    # the answer can be appended to the conversation and sent back with the tool result
    upstream.app.script(vendor.path, vendor.text())
    history = [
        {"role": "user", "content": "Weather in Hangzhou?"},
        resp.message,
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 21}'},
    ]
    assert gw.chat(history, _model(vendor), tools=[WEATHER]).text == rec.TEXT
    body = json.dumps(upstream.app.requests[-1][2], ensure_ascii=False)
    assert call.id in body and "21" in body


def test_rate_limit_is_retried_after_the_wait_it_asks_for(
    vendor: Vendor, gw: Gateway, upstream: UpstreamServer
) -> None:
    upstream.app.script(vendor.path, vendor.rate_limited(), vendor.text())
    assert gw.chat("hi", _model(vendor)).text == rec.TEXT
    assert len(upstream.app.requests) == 2


def test_rate_limit_surfaces_typed_when_retries_run_out(
    vendor: Vendor, make_gateway: Callable[..., Gateway], upstream: UpstreamServer
) -> None:
    gw = make_gateway((vendor.endpoint,), keys={vendor.key_env: SECRET}, retries=0)
    upstream.app.script(vendor.path, vendor.rate_limited())
    with pytest.raises(RateLimitError) as info:
        gw.chat("hi", _model(vendor))
    assert info.value.retry_after == pytest.approx(0.05)


def test_auth_error_is_typed_and_never_shows_the_key(
    vendor: Vendor, gw: Gateway, upstream: UpstreamServer
) -> None:
    upstream.app.script(vendor.path, vendor.unauthorized())
    with pytest.raises(AuthenticationError) as info:
        gw.chat("hi", _model(vendor))
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)
    assert "hanlin keys set" in (info.value.hint or "")
    assert SECRET not in repr(gw.provider(gw.resolve(_model(vendor)).deployments[0]))
    # the key did reach the upstream, in the vendor's header
    headers = upstream.app.requests[-1][1]
    assert any(SECRET in v for v in headers.values())


def test_context_too_long_is_typed(vendor: Vendor, gw: Gateway, upstream: UpstreamServer) -> None:
    assert vendor.context_too_long is not None
    upstream.app.script(vendor.path, vendor.context_too_long())
    with pytest.raises(ContextTooLongError):
        gw.chat("hi", _model(vendor))


def test_connection_reset_mid_stream_after_first_token_raises(
    vendor: Vendor, gw: Gateway, upstream: UpstreamServer
) -> None:
    reply = vendor.text_stream()
    reply.reset_after = 5
    upstream.app.script(vendor.path, reply)
    seen: list[str] = []
    with pytest.raises(UpstreamUnavailableError):
        for event in gw.stream("hi", _model(vendor)):
            if event.type == "text":
                seen.append(event.text)
    assert seen, "tokens before the reset reach the caller"
    assert len(upstream.app.requests) == 1, "no retry once tokens were delivered"


def test_reset_before_first_token_is_retried(
    vendor: Vendor, gw: Gateway, upstream: UpstreamServer
) -> None:
    broken = vendor.text_stream()
    broken.reset_after = 1
    upstream.app.script(vendor.path, broken, vendor.text_stream())
    text = "".join(e.text for e in gw.stream("hi", _model(vendor)) if e.type == "text")
    assert text == rec.TEXT
    assert len(upstream.app.requests) == 2


def test_malformed_json_is_an_upstream_error(
    vendor: Vendor, gw: Gateway, upstream: UpstreamServer
) -> None:
    upstream.app.script(vendor.path, Reply(raw=b"{not json"), Reply(raw=b"<html>502</html>"))
    with pytest.raises(UpstreamUnavailableError, match="JSON"):
        gw.chat("hi", _model(vendor))


# --- the in-process local provider: the same translation cases on a real model ----------------
# It has no recorded wire format to replay, so it runs the same cases against the bundled GGUF:
# text streams incrementally and joins to the non-streamed answer; a tool call streams as
# ToolCallDelta pieces that join to valid arguments; its result goes back into the conversation.


@pytest.fixture(scope="module")
def local_gguf(tmp_path_factory: pytest.TempPathFactory) -> str:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (hanlin[local])")
    from hanlin.models.providers.llamacpp import bundled_model_path

    return str(bundled_model_path(tmp_path_factory.mktemp("models-home")))


@pytest.fixture()
def local_gw(local_gguf: str) -> Iterator[Gateway]:
    from hanlin.config import load_settings

    gw = Gateway(
        load_settings(
            models={
                "endpoints": {
                    "local": {"provider": "llamacpp", "options": {"model_path": local_gguf}}
                }
            }
        )
    )
    yield gw
    gw.close()


LOCAL = "local/gemma3-270m"


@pytest.mark.slow
def test_local_streamed_text_joins_to_the_whole_answer(local_gw: Gateway) -> None:
    kw: dict[str, Any] = {"temperature": 0, "seed": 3, "max_tokens": 12}
    local_gw.chat(
        "Name a colour.", LOCAL, **kw
    )  # warm the prompt cache (greedy output depends on it)
    whole = local_gw.chat("Name a colour.", LOCAL, **kw)
    stream = local_gw.stream("Name a colour.", LOCAL, **kw)
    deltas = [e.text for e in stream if e.type == "text"]
    assert len(deltas) > 1 and "".join(deltas) == whole.text
    assert stream.response is not None
    assert stream.response.usage.completion_tokens == whole.usage.completion_tokens > 0


@pytest.mark.slow
def test_local_streamed_tool_call_joins_to_valid_arguments(local_gw: Gateway) -> None:
    acc = StreamAccumulator()
    for event in local_gw.stream(
        "Weather in Hangzhou?",
        LOCAL,
        tools=[WEATHER],
        tool_choice="required",
        max_tokens=96,
        temperature=0,
        seed=1,
    ):
        acc.add(event)
    assert acc.finish_reason == "tool_calls"
    [call] = acc.tool_calls
    assert call.name == "get_weather" and call.id
    assert isinstance(json.loads(call.arguments)["location"], str)


@pytest.mark.slow
def test_local_tool_call_round_trip(local_gw: Gateway) -> None:
    # greedy, with room for the whole call: a sampled call can run past a small max_tokens
    resp = local_gw.chat(
        "Weather in Hangzhou?",
        LOCAL,
        tools=[WEATHER],
        tool_choice="get_weather",
        max_tokens=96,
        temperature=0,
        seed=1,
    )
    [call] = resp.tool_calls
    history = [
        {"role": "user", "content": "Weather in Hangzhou?"},
        resp.message,
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 21}'},
    ]
    answer = local_gw.chat(history, LOCAL, tools=[WEATHER], tool_choice="none", max_tokens=16)
    assert answer.finish_reason in ("stop", "length") and not answer.tool_calls
