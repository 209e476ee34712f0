"""AnthropicProvider against a real local HTTP server replaying Anthropic's recorded shapes:
answers, request translation and JSON output."""

from __future__ import annotations

import dataclasses
import json

import pytest

from hanlin.models.errors import (
    BadRequestError,
)
from hanlin.models.providers.anthropic import AnthropicProvider
from hanlin.models.providers.anthropic_messages import JSON_TOOL, request_body
from hanlin.models.types import (
    AudioPart,
    ChatOptions,
    FilePart,
    Finish,
    ImagePart,
    Message,
    ResponseFormat,
    StreamAccumulator,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallDelta,
    UsageEvent,
)
from hanlin.testing import recordings as rec
from hanlin.testing.upstream import FakeUpstream, Reply, UpstreamServer
from tests.models.anthropic.support import (
    HI,
    KEY,
    MESSAGE_START,
    MODEL,
    MODES,
    PATH,
    SCHEMA,
    WEATHER,
    block_delta,
    block_start,
    call,
    collect,
    sent_body,
    stream_end,
)

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


def test_a_pdf_part_becomes_a_document_block_and_audio_is_refused() -> None:
    pdf = FilePart("data:application/pdf;base64,JVBERi0x", filename="a.pdf")
    body, _ = request_body(MODEL, [Message.user([pdf])], ChatOptions(), max_tokens=64, stream=False)
    source = {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"}
    assert body["messages"][0]["content"] == [{"type": "document", "source": source}]
    with pytest.raises(BadRequestError, match="PDF data: URLs"):
        uploaded = [Message.user([FilePart(file_id="file-abc")])]
        request_body(MODEL, uploaded, ChatOptions(), max_tokens=64, stream=False)
    with pytest.raises(BadRequestError, match="cannot hear audio"):
        heard = [Message.user([AudioPart("UklGRg==", "wav")])]
        request_body(MODEL, heard, ChatOptions(), max_tokens=64, stream=False)


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
