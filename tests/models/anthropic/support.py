"""Constants and helpers shared by the Anthropic provider tests."""

from __future__ import annotations

import json
from typing import Any

from hanlin.models.providers.anthropic import AnthropicProvider
from hanlin.models.types import (
    ChatOptions,
    ChatResponse,
    Message,
    StreamAccumulator,
    StreamEvent,
    Tool,
)
from hanlin.testing import recordings as rec
from hanlin.testing.upstream import FakeUpstream

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
