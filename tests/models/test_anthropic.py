"""AnthropicProvider against a real local HTTP server replaying Anthropic's recorded shapes."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from importlib.metadata import entry_points
from typing import Any

import pytest

from hanlin.models.base import PROVIDER_GROUP
from hanlin.models.errors import (
    AuthenticationError,
    BadRequestError,
    MissingKeyError,
    ModelError,
    ModelTimeoutError,
    RateLimitError,
    UnsupportedFeatureError,
    UpstreamUnavailableError,
)
from hanlin.models.providers.anthropic import AnthropicProvider
from hanlin.models.providers.anthropic_wire import JSON_TOOL, request_body
from hanlin.models.types import (
    ChatOptions,
    ChatResponse,
    Finish,
    ImagePart,
    Message,
    ResponseFormat,
    StreamAccumulator,
    StreamEvent,
    TextDelta,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
    UsageEvent,
)
from hanlin.testing import recordings as rec
from hanlin.testing.upstream import FakeUpstream, Reply, UpstreamServer

KEY = "sk-ant-api03-SECRET-never-print-me-7f3a9c"
MODEL = "claude-sonnet-4-5"
PATH = "/v1/messages"
WEATHER = Tool(
    name="get_weather",
    description="Weather for a city",
    parameters={"type": "object", "properties": {"location": {"type": "string"}}},
)
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "temp": {"type": "number"}},
    "required": ["city", "temp"],
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def server() -> Iterator[UpstreamServer]:
    with UpstreamServer() as running:
        yield running


@pytest.fixture
def upstream(server: UpstreamServer) -> Iterator[FakeUpstream]:
    server.app.reset()
    yield server.app
    server.app.reset()


@pytest.fixture
async def provider(
    server: UpstreamServer, upstream: FakeUpstream
) -> AsyncIterator[AnthropicProvider]:
    endpoint = dataclasses.replace(AnthropicProvider.presets()[0], base_url=server.url)
    p = AnthropicProvider(endpoint, KEY)
    yield p
    await p.aclose()


async def collect(
    p: AnthropicProvider, messages: list[Message], options: ChatOptions | None = None
) -> list[StreamEvent]:
    return [e async for e in p.stream(MODEL, messages, options or ChatOptions())]


async def call(
    p: AnthropicProvider, mode: str, messages: list[Message], options: ChatOptions | None = None
) -> ChatResponse:
    """One call, non-streamed or streamed and folded, so tests can run both ways."""
    options = options or ChatOptions()
    if mode == "complete":
        return await p.complete(MODEL, messages, options)
    acc = StreamAccumulator()
    async for event in p.stream(MODEL, messages, options):
        acc.add(event)
    return acc.response(MODEL)


def sent_body(upstream: FakeUpstream) -> dict[str, Any]:
    assert len(upstream.requests) == 1
    path, _, body = upstream.requests[0]
    assert path == PATH and isinstance(body, dict)
    return body


def event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}"


def block_start(index: int, block: dict[str, Any]) -> str:
    return event(
        "content_block_start",
        {"type": "content_block_start", "index": index, "content_block": block},
    )


def block_delta(index: int, delta: dict[str, Any]) -> str:
    return event(
        "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
    )


def stream_end(stop_reason: str) -> list[str]:
    return [
        event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": 10},
            },
        ),
        event("message_stop", {"type": "message_stop"}),
    ]


MESSAGE_START = (rec.anthropic_text_stream().sse or [])[0]
HI = [Message.user("Hi")]
MODES = ["complete", "stream"]


# --- answers ------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_complete_text(provider: AnthropicProvider, upstream: FakeUpstream) -> None:
    upstream.script(PATH, rec.anthropic_text())
    response = await provider.complete(MODEL, HI, ChatOptions())
    assert response.text == rec.TEXT
    assert response.finish_reason == "stop"
    assert response.tool_calls == []
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (19, 10)
    assert response.model == rec.ANTHROPIC_MODEL
    _, headers, body = upstream.requests[0]
    assert headers["x-api-key"] == KEY
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["content-type"] == "application/json"
    assert body == {
        "model": MODEL,
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": "Hi"}],
    }


@pytest.mark.anyio
async def test_stream_text(provider: AnthropicProvider, upstream: FakeUpstream) -> None:
    upstream.script(PATH, rec.anthropic_text_stream())
    events = await collect(provider, HI)
    assert [e.text for e in events if isinstance(e, TextDelta)] == rec.TEXT_PIECES
    usage, finish = events[-2:]
    assert isinstance(usage, UsageEvent) and isinstance(finish, Finish)
    assert (usage.usage.prompt_tokens, usage.usage.completion_tokens) == (19, 10)
    assert finish.reason == "stop"
    assert sent_body(upstream)["stream"] is True


@pytest.mark.anyio
async def test_cache_tokens_count_as_prompt(
    provider: AnthropicProvider, upstream: FakeUpstream
) -> None:
    reply = rec.anthropic_text()
    reply.json["usage"].update(cache_read_input_tokens=100, cache_creation_input_tokens=20)
    upstream.script(PATH, reply)
    usage = (await provider.complete(MODEL, HI, ChatOptions())).usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens) == (139, 10, 100)


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_tool_call(provider: AnthropicProvider, upstream: FakeUpstream, mode: str) -> None:
    reply = rec.anthropic_tool_call() if mode == "complete" else rec.anthropic_tool_stream()
    upstream.script(PATH, reply)
    response = await call(provider, mode, [Message.user("Weather in Hangzhou?")])
    assert response.tool_calls == [
        ToolCall("toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather", rec.TOOL_ARGS)
    ]
    assert response.finish_reason == "tool_calls"
    assert response.text == ""


@pytest.mark.anyio
async def test_stream_numbers_tool_calls_among_tool_blocks(
    provider: AnthropicProvider, upstream: FakeUpstream
) -> None:
    sse = [
        MESSAGE_START,
        block_start(0, {"type": "text", "text": ""}),
        block_delta(0, {"type": "text_delta", "text": "Checking both."}),
        block_start(1, {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {}}),
        block_delta(1, {"type": "input_json_delta", "partial_json": '{"location": '}),
        block_delta(1, {"type": "input_json_delta", "partial_json": '"Hangzhou"}'}),
        block_start(2, {"type": "tool_use", "id": "toolu_b", "name": "get_weather", "input": {}}),
        block_delta(2, {"type": "input_json_delta", "partial_json": '{"location": "Beijing"}'}),
        *stream_end("tool_use"),
    ]
    upstream.script(PATH, Reply(sse=sse))
    events = await collect(provider, HI)
    assert [e.index for e in events if isinstance(e, ToolCallDelta)] == [0, 0, 0, 1, 1]
    acc = StreamAccumulator()
    for e in events:
        acc.add(e)
    assert acc.text == "Checking both."
    assert acc.tool_calls == [
        ToolCall("toolu_a", "get_weather", '{"location": "Hangzhou"}'),
        ToolCall("toolu_b", "get_weather", '{"location": "Beijing"}'),
    ]
    assert acc.finish_reason == "tool_calls"


# --- request translation ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_request_translation(provider: AnthropicProvider, upstream: FakeUpstream) -> None:
    png = "iVBORw0KGgoAAAANSUhEUg=="
    messages = [
        Message.system("You are terse."),
        Message.user("Weather in Hangzhou and Beijing?"),
        Message.assistant(
            "Looking.",
            [
                ToolCall("toolu_a", "get_weather", '{"location": "Hangzhou"}'),
                ToolCall("toolu_b", "get_weather", ""),
            ],
        ),
        Message.tool("toolu_a", "21 °C"),
        Message.tool("toolu_b", "15 °C"),
        Message.user(
            [
                TextPart("And these?"),
                ImagePart(f"data:image/png;base64,{png}"),
                ImagePart("https://example.com/sky.jpg"),
            ]
        ),
        Message.system("Answer in Chinese."),
    ]
    options = ChatOptions(
        temperature=0.2,
        top_p=0.9,
        stop=["\n\nHuman:"],
        seed=42,
        tools=[WEATHER],
        tool_choice="required",
        user="u-1",
        extra_body={"top_k": 5},
    )
    upstream.script(PATH, rec.anthropic_text())
    await provider.complete(MODEL, messages, options)
    assert sent_body(upstream) == {
        "model": MODEL,
        "max_tokens": 4096,
        "system": "You are terse.\n\nAnswer in Chinese.",
        "messages": [
            {"role": "user", "content": "Weather in Hangzhou and Beijing?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Looking."},
                    {
                        "type": "tool_use",
                        "id": "toolu_a",
                        "name": "get_weather",
                        "input": {"location": "Hangzhou"},
                    },
                    {"type": "tool_use", "id": "toolu_b", "name": "get_weather", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_a", "content": "21 °C"},
                    {"type": "tool_result", "tool_use_id": "toolu_b", "content": "15 °C"},
                    {"type": "text", "text": "And these?"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": png},
                    },
                    {
                        "type": "image",
                        "source": {"type": "url", "url": "https://example.com/sky.jpg"},
                    },
                ],
            },
        ],
        "temperature": 0.2,
        "top_p": 0.9,
        "stop_sequences": ["\n\nHuman:"],
        "metadata": {"user_id": "u-1"},
        "tools": [
            {
                "name": "get_weather",
                "description": "Weather for a city",
                "input_schema": WEATHER.parameters,
            }
        ],
        "tool_choice": {"type": "any"},
        "top_k": 5,
    }


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        ("get_weather", {"type": "tool", "name": "get_weather"}),
    ],
)
def test_tool_choice_mapping(choice: str, expected: dict[str, str]) -> None:
    options = ChatOptions(tools=[WEATHER], tool_choice=choice)
    body, _ = request_body(MODEL, HI, options, max_tokens=4096, stream=False)
    assert body["tool_choice"] == expected


def test_options_and_merging() -> None:
    messages = [Message.user("one"), Message.user("two"), Message.assistant("ok")]
    options = ChatOptions(max_tokens=300, temperature=1.7)
    body, json_mode = request_body(MODEL, messages, options, max_tokens=4096, stream=False)
    assert not json_mode
    assert body["max_tokens"] == 300
    assert body["temperature"] == 1.0  # Anthropic's maximum
    assert body["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}],
        },
        {"role": "assistant", "content": "ok"},
    ]
    assert "system" not in body and "tools" not in body and "stream" not in body


@pytest.mark.anyio
async def test_default_max_tokens_from_endpoint_options(
    server: UpstreamServer, upstream: FakeUpstream
) -> None:
    preset = AnthropicProvider.presets()[0]
    endpoint = dataclasses.replace(preset, base_url=server.url, options={"max_tokens": 1024})
    p = AnthropicProvider(endpoint, KEY)
    upstream.script(PATH, rec.anthropic_text())
    try:
        await p.complete(MODEL, HI, ChatOptions())
    finally:
        await p.aclose()
    assert sent_body(upstream)["max_tokens"] == 1024


@pytest.mark.anyio
async def test_invalid_tool_arguments_are_a_bad_request(
    provider: AnthropicProvider, upstream: FakeUpstream
) -> None:
    messages = [
        Message.user("hi"),
        Message.assistant(None, [ToolCall("toolu_x", "get_weather", '{"location": ')]),
        Message.tool("toolu_x", "?"),
    ]
    with pytest.raises(BadRequestError, match=r"toolu_x.*not valid JSON"):
        await provider.complete(MODEL, messages, ChatOptions())
    assert upstream.requests == []


def test_image_with_unsupported_scheme_is_a_bad_request() -> None:
    messages = [Message.user([ImagePart("file:///tmp/cat.png")])]
    with pytest.raises(BadRequestError, match="data: URL"):
        request_body(MODEL, messages, ChatOptions(), max_tokens=4096, stream=False)


# --- JSON output through the forced tool --------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_json_schema_answer_is_text(
    provider: AnthropicProvider, upstream: FakeUpstream, mode: str
) -> None:
    answer = {"city": "杭州", "temp": 21.5}
    text = json.dumps(answer, ensure_ascii=False)
    if mode == "complete":
        reply = rec.anthropic_tool_call()
        reply.json["content"] = [
            {"type": "tool_use", "id": "toolu_j", "name": JSON_TOOL, "input": answer}
        ]
    else:
        pieces = [text[:7], text[7:15], text[15:]]
        reply = Reply(
            sse=[
                MESSAGE_START,
                block_start(
                    0, {"type": "tool_use", "id": "toolu_j", "name": JSON_TOOL, "input": {}}
                ),
                block_delta(0, {"type": "input_json_delta", "partial_json": ""}),
                *[block_delta(0, {"type": "input_json_delta", "partial_json": p}) for p in pieces],
                *stream_end("tool_use"),
            ]
        )
    upstream.script(PATH, reply)
    options = ChatOptions(response_format=ResponseFormat(type="json_schema", json_schema=SCHEMA))
    response = await call(provider, mode, HI, options)
    assert json.loads(response.text) == answer
    assert response.tool_calls == []
    assert response.finish_reason == "stop"
    body = sent_body(upstream)
    assert body["tools"] == [
        {
            "name": JSON_TOOL,
            "description": "Give the answer as JSON matching this schema.",
            "input_schema": SCHEMA,
        }
    ]
    assert body["tool_choice"] == {"type": "tool", "name": JSON_TOOL}


def test_json_object_and_json_next_to_tools() -> None:
    options = ChatOptions(response_format=ResponseFormat(type="json_object"))
    body, json_mode = request_body(MODEL, HI, options, max_tokens=4096, stream=False)
    assert json_mode
    assert body["tools"][0]["input_schema"] == {"type": "object"}
    # With the caller's tools the model must call one of them or answer through the JSON tool.
    options = ChatOptions(tools=[WEATHER], response_format=ResponseFormat(type="json_object"))
    body, _ = request_body(MODEL, HI, options, max_tokens=4096, stream=False)
    assert [t["name"] for t in body["tools"]] == ["get_weather", JSON_TOOL]
    assert body["tool_choice"] == {"type": "any"}


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (
            rec.anthropic_error(401, "authentication_error", "invalid x-api-key"),
            AuthenticationError,
        ),
        (rec.anthropic_error(400, "invalid_request_error", "max_tokens: too big"), BadRequestError),
        (rec.anthropic_error(529, "overloaded_error", "Overloaded"), UpstreamUnavailableError),
        (rec.anthropic_error(500, "api_error", "Internal server error"), UpstreamUnavailableError),
    ],
    ids=["401", "400", "529", "500"],
)
async def test_http_errors(
    provider: AnthropicProvider,
    upstream: FakeUpstream,
    mode: str,
    reply: Reply,
    error: type[ModelError],
) -> None:
    upstream.script(PATH, reply)
    with pytest.raises(error) as caught:
        await call(provider, mode, HI)
    assert caught.value.status == reply.status
    assert caught.value.provider == f"anthropic/{MODEL}"
    assert reply.json["error"]["message"] in str(caught.value)


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_rate_limit_carries_retry_after(
    provider: AnthropicProvider, upstream: FakeUpstream, mode: str
) -> None:
    upstream.script(
        PATH, rec.anthropic_error(429, "rate_limit_error", "Rate limited", **{"retry-after": "7"})
    )
    with pytest.raises(RateLimitError) as caught:
        await call(provider, mode, HI)
    assert caught.value.retry_after == 7
    assert caught.value.retryable


@pytest.mark.anyio
async def test_error_event_mid_stream(provider: AnthropicProvider, upstream: FakeUpstream) -> None:
    upstream.script(PATH, rec.anthropic_overloaded_mid_stream())
    got: list[StreamEvent] = []
    with pytest.raises(UpstreamUnavailableError, match="Overloaded"):
        async for e in provider.stream(MODEL, HI, ChatOptions()):
            got.append(e)
    assert got == [TextDelta("Hel")]


@pytest.mark.anyio
async def test_connection_reset_mid_stream(
    provider: AnthropicProvider, upstream: FakeUpstream
) -> None:
    # message_start, content_block_start, ping, "Hello", "!" — then the connection drops
    upstream.script(PATH, Reply(sse=rec.anthropic_text_stream().sse, reset_after=5))
    got: list[StreamEvent] = []
    with pytest.raises(UpstreamUnavailableError, match="mid-stream"):
        async for e in provider.stream(MODEL, HI, ChatOptions()):
            got.append(e)
    assert got == [TextDelta("Hello"), TextDelta("!")]


@pytest.mark.anyio
async def test_reset_before_any_event(provider: AnthropicProvider, upstream: FakeUpstream) -> None:
    upstream.script(PATH, Reply(sse=rec.anthropic_text_stream().sse, reset_after=3))
    with pytest.raises(UpstreamUnavailableError):
        await collect(provider, HI)


@pytest.mark.anyio
async def test_stream_cut_short_without_message_stop(
    provider: AnthropicProvider, upstream: FakeUpstream
) -> None:
    upstream.script(PATH, Reply(sse=(rec.anthropic_text_stream().sse or [])[:5]))
    with pytest.raises(UpstreamUnavailableError, match="ended before message_stop"):
        await collect(provider, HI)


@pytest.mark.anyio
async def test_malformed_json_body(provider: AnthropicProvider, upstream: FakeUpstream) -> None:
    upstream.script(PATH, Reply(raw=b"{not json"))
    with pytest.raises(UpstreamUnavailableError, match="malformed JSON"):
        await provider.complete(MODEL, HI, ChatOptions())


@pytest.mark.anyio
async def test_malformed_json_event(provider: AnthropicProvider, upstream: FakeUpstream) -> None:
    sse = [MESSAGE_START, "event: content_block_delta\ndata: {not json"]
    upstream.script(PATH, Reply(sse=sse))
    with pytest.raises(UpstreamUnavailableError, match="malformed JSON"):
        await collect(provider, HI)


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_slow_first_byte_times_out(
    provider: AnthropicProvider, upstream: FakeUpstream, mode: str
) -> None:
    reply = rec.anthropic_text() if mode == "complete" else rec.anthropic_text_stream()
    reply.first_byte_delay = 2
    upstream.script(PATH, reply)
    start = time.monotonic()
    with pytest.raises(ModelTimeoutError, match=r"0\.3 s"):
        await call(provider, mode, HI, ChatOptions(timeout=0.3))
    assert time.monotonic() - start < 1.0


@pytest.mark.anyio
async def test_slow_first_token_after_headers_times_out(
    provider: AnthropicProvider, upstream: FakeUpstream
) -> None:
    # the status line and headers come at once; the events do not
    sse = [MESSAGE_START, block_delta(0, {"type": "text_delta", "text": "late"})]
    upstream.script(PATH, Reply(sse=sse, chunk_delay=1.0))
    start = time.monotonic()
    with pytest.raises(ModelTimeoutError, match="no first token"):
        await collect(provider, HI, ChatOptions(timeout=0.3))
    assert time.monotonic() - start < 0.9


@pytest.mark.anyio
async def test_stream_timeout_bounds_only_the_first_token(
    provider: AnthropicProvider, upstream: FakeUpstream
) -> None:
    # first token after ~0.3 s, whole stream ~1.1 s: a 0.6 s first-token timeout lets it finish
    reply = rec.anthropic_text_stream()
    reply.chunk_delay = 0.075
    upstream.script(PATH, reply)
    response = await call(provider, "stream", HI, ChatOptions(timeout=0.6))
    assert response.text == rec.TEXT


# --- keys, capabilities, registry ---------------------------------------------------------------


@pytest.mark.anyio
async def test_key_never_leaks(
    provider: AnthropicProvider, upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert KEY not in repr(provider) and KEY not in str(provider)
    upstream.script(PATH, rec.anthropic_text(), rec.anthropic_text_stream())
    await call(provider, "complete", HI)
    await call(provider, "stream", HI)
    errors: list[BaseException] = []
    for reply in (
        rec.anthropic_error(401, "authentication_error", f"invalid x-api-key {KEY}"),
        Reply(sse=rec.anthropic_text_stream().sse, reset_after=5),
        Reply(raw=b"{not json"),
    ):
        for mode in MODES:
            upstream.script(PATH, dataclasses.replace(reply))
            with pytest.raises(ModelError) as caught:
                await call(provider, mode, HI)
            errors.append(caught.value)
    for exc in errors:
        assert KEY not in str(exc) and KEY not in repr(exc)
        assert exc.__cause__ is None or KEY not in str(exc.__cause__)
    assert caplog.records  # httpx/httpcore did log at DEBUG
    for record in caplog.records:
        assert KEY not in record.getMessage()
        assert KEY not in repr(record.__dict__)


@pytest.mark.anyio
async def test_missing_key(server: UpstreamServer, upstream: FakeUpstream) -> None:
    endpoint = dataclasses.replace(AnthropicProvider.presets()[0], base_url=server.url)
    p = AnthropicProvider(endpoint, None)
    with pytest.raises(MissingKeyError, match="ANTHROPIC_API_KEY") as caught:
        await p.complete(MODEL, HI, ChatOptions())
    assert "hanlin keys set anthropic" in str(caught.value)
    with pytest.raises(MissingKeyError):
        await collect(p, HI)
    assert upstream.requests == []


@pytest.mark.anyio
async def test_no_embeddings_or_rerank(provider: AnthropicProvider) -> None:
    with pytest.raises(UnsupportedFeatureError, match="embeddings"):
        await provider.embed(MODEL, ["a"])
    with pytest.raises(UnsupportedFeatureError, match="rerank"):
        await provider.rerank(MODEL, "q", ["a", "b"])
    assert not AnthropicProvider.supports_embeddings and not AnthropicProvider.supports_rerank


def test_registered_with_presets() -> None:
    # loaded on its own, so a sibling provider's import error cannot fail this test
    (entry,) = entry_points(group=PROVIDER_GROUP, name="anthropic")
    assert entry.load() is AnthropicProvider
    (endpoint,) = AnthropicProvider.presets()
    assert (endpoint.name, endpoint.provider, endpoint.dialect) == (
        "anthropic",
        "anthropic",
        "anthropic",
    )
    assert endpoint.base_url == "https://api.anthropic.com/v1"
    assert endpoint.key_env == "ANTHROPIC_API_KEY"
    sonnet = endpoint.model("claude-sonnet-4-5")
    assert sonnet is not None and sonnet.price is not None
    assert (sonnet.price.input, sonnet.price.output, sonnet.price.cached_input) == (3.0, 15.0, 0.3)
    assert all(m.supports_images and m.context == 200_000 for m in endpoint.models)
