"""What a client sends through ``/v1/chat/completions`` reaches a gateway model's provider as
sent: structured-output and tool schemas with their ``strict`` and ``description``, file and
audio parts. Each test here began as a field that LangChain's standard tests (or a client like
them) found dropped or changed on the way (tests/server/test_langchain_standard.py)."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from hanlin.testing.capable_model import capable_reply, invalid
from hanlin.testing.upstream import UpstreamServer
from tests.server.conftest import MODEL, LiveServer
from tests.server.test_openai_clients import TOOLS, sdk

CHAT = "/v1/chat/completions"
JOKE: dict[str, Any] = {
    "type": "object",
    "properties": {"setup": {"type": "string"}, "punchline": {"type": "string"}},
    "required": ["setup"],
}


def _sent(upstream: UpstreamServer) -> dict[str, Any]:
    path, _, body = upstream.app.requests[-1]
    assert path == CHAT
    result: dict[str, Any] = body
    return result


@pytest.mark.parametrize("strict", [None, False, True])
def test_response_format_reaches_the_provider_as_sent(
    live: LiveServer, upstream: UpstreamServer, strict: bool | None
) -> None:
    spec: dict[str, Any] = {"name": "joke", "description": "A joke to tell", "schema": JOKE}
    if strict is not None:
        spec["strict"] = strict
    sdk(live).chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "a joke"}],
        response_format={"type": "json_schema", "json_schema": spec},  # type: ignore[typeddict-item]
    )
    # no strict means OpenAI's default, false: strict mode refuses this schema
    assert _sent(upstream)["response_format"] == {
        "type": "json_schema",
        "json_schema": spec | {"strict": bool(strict)},
    }


def test_strict_tools_stay_strict(live: LiveServer, upstream: UpstreamServer) -> None:
    strict: Any = [{**TOOLS[0], "function": {**TOOLS[0]["function"], "strict": True}}]
    client = sdk(live)
    client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], tools=strict
    )
    assert _sent(upstream)["tools"][0]["function"]["strict"] is True
    client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], tools=TOOLS
    )
    assert "strict" not in _sent(upstream)["tools"][0]["function"]


def test_file_and_audio_parts_reach_the_provider(
    live: LiveServer, upstream: UpstreamServer
) -> None:
    parts: Any = [
        {"type": "text", "text": "Summarise the document and the recording."},
        {
            "type": "file",
            "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"},
        },
        {"type": "file", "file": {"file_id": "file-6F2ksmvXxt4VdoqmHRw6kL"}},
        {"type": "input_audio", "input_audio": {"data": "UklGRiQAAABXQVZF", "format": "wav"}},
    ]
    sdk(live).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": parts}])
    assert _sent(upstream)["messages"][0]["content"] == parts


def test_a_malformed_part_names_its_message(live: LiveServer) -> None:
    messages: Any = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": [{"type": "input_audio", "input_audio": {"format": "wav"}}]},
    ]
    with pytest.raises(openai.BadRequestError, match=r"messages\[2\]\.content\[0\]"):
        sdk(live).chat.completions.create(model=MODEL, messages=messages)


# -- the capable stand-in refuses what OpenAI refuses, so a mangled request fails there ------


def test_the_capable_model_refuses_what_openai_refuses() -> None:
    strict = {"type": "json_schema", "json_schema": {"name": "j", "schema": JOKE, "strict": True}}
    ask = [{"role": "user", "content": "a joke"}]
    assert "additionalProperties" in str(invalid({"messages": ask, "response_format": strict}))
    orphan = [*ask, {"role": "tool", "tool_call_id": "call_1", "content": "3"}]
    assert "preceding message with 'tool_calls'" in str(invalid({"messages": orphan}))
    unanswered = [
        *ask,
        {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function"}]},
        {"role": "user", "content": "and?"},
    ]
    assert capable_reply({"messages": unanswered}).status == 400
    assert invalid({"messages": ask, "response_format": {**strict, "type": "json_object"}}) is None
