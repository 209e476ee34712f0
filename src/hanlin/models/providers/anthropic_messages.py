"""Anthropic Messages API wire format: our messages and options to request bodies, answers and
SSE events back to our types, and HTTP errors to typed errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from typing import Any

import httpx

from hanlin.models.errors import (
    BadRequestError,
    ModelError,
    ModelTimeoutError,
    RateLimitError,
    UnsupportedFeatureError,
    UpstreamUnavailableError,
    error_for_status,
)
from hanlin.models.providers.http_shared import malformed, retry_after
from hanlin.models.types import (
    ChatOptions,
    ChatResponse,
    ContentPart,
    FilePart,
    Finish,
    FinishReason,
    ImagePart,
    Message,
    ResponseFormat,
    StreamEvent,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallDelta,
    Usage,
    UsageEvent,
)

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
DEFAULT_TIMEOUT = 600.0
#: the tool that carries JSON answers (``response_format``); its input is returned as text
JSON_TOOL = "json_response"

LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=200, keepalive_expiry=30)

_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# The HTTP status Anthropic uses for each error type, for errors that arrive inside a stream.
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

_TOOL_CHOICE: dict[str, dict[str, str]] = {
    "auto": {"type": "auto"},
    "none": {"type": "none"},
    "required": {"type": "any"},
}

# --- request translation ------------------------------------------------------------------------


def _image_block(part: ImagePart) -> dict[str, Any]:
    url = part.url
    if url.startswith("data:"):
        data, media_type = part.base64_data, part.media_type
        if not data or not media_type:
            raise BadRequestError(
                "an image data: URL must carry base64 bytes and a media type",
                hint="use data:image/png;base64,… (or jpeg, gif, webp)",
            )
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise BadRequestError(
        f"Anthropic accepts images as https:// or data: URLs, not {url[:40]!r}",
        hint="read the file and pass it as a data:image/…;base64,… URL",
    )


def _content_blocks(content: str | list[ContentPart] | None) -> list[dict[str, Any]]:
    # Anthropic rejects empty text blocks, so they are left out.
    if not content:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, TextPart):
            if part.text:
                blocks.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            blocks.append(_image_block(part))
        elif isinstance(part, FilePart):
            blocks.append(_document_block(part))
        else:
            raise BadRequestError(
                "Anthropic models cannot hear audio",
                hint="leave out the input_audio part, or use a model that takes audio",
            )
    return blocks


def _document_block(part: FilePart) -> dict[str, Any]:
    data, media_type = part.base64_data, part.media_type
    if not data or media_type != "application/pdf":
        raise BadRequestError(
            "Anthropic reads documents as PDF data: URLs",
            hint="send file.file_data as data:application/pdf;base64,… (file ids are OpenAI's)",
        )
    source = {"type": "base64", "media_type": media_type, "data": data}
    return {"type": "document", "source": source}


def _tool_use_block(call: ToolCall) -> dict[str, Any]:
    try:
        arguments = json.loads(call.arguments) if call.arguments.strip() else {}
    except ValueError as exc:
        raise BadRequestError(
            f"the arguments of tool call {call.id!r} ({call.name}) are not valid JSON: {exc}",
            hint="pass the model's arguments through unchanged, or fix the JSON text",
        ) from None
    if not isinstance(arguments, dict):
        raise BadRequestError(
            f"the arguments of tool call {call.id!r} ({call.name}) must be a JSON object",
            hint='Anthropic takes tool input as an object, e.g. {"city": "Hangzhou"}',
        )
    return {"type": "tool_use", "id": call.id, "name": call.name, "input": arguments}


def translate_messages(messages: Sequence[Message]) -> tuple[str | None, list[dict[str, Any]]]:
    """``(system, messages)`` for the Messages API.

    System messages become the top-level ``system`` text; tool results become ``tool_result``
    blocks of a user turn; consecutive turns of one role are merged (the API wants them to
    alternate, and all results of one round of tool calls in one user turn).
    """
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for m in messages:
        role: str = m.role
        if role == "system":
            if m.text:
                system.append(m.text)
            continue
        if role == "tool":
            if not m.tool_call_id:
                raise BadRequestError(
                    "a tool message needs the tool_call_id of the call it answers",
                    hint="use Message.tool(call.id, result)",
                )
            result = m.content if isinstance(m.content, str) else _content_blocks(m.content)
            blocks = [{"type": "tool_result", "tool_use_id": m.tool_call_id, "content": result}]
            role = "user"
        else:
            blocks = _content_blocks(m.content)
            if m.tool_calls:
                blocks.extend(_tool_use_block(c) for c in m.tool_calls)
            if not blocks:
                continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:  # the plain-string form for simple text turns
        content = turn["content"]
        if len(content) == 1 and content[0]["type"] == "text":
            turn["content"] = content[0]["text"]
    return ("\n\n".join(system) or None), turns


def _json_tool(fmt: ResponseFormat) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object"}
    if fmt.type == "json_schema" and fmt.json_schema:
        schema = fmt.json_schema
        if "schema" in schema and "type" not in schema:  # OpenAI's {"name", "schema"} wrapper
            schema = schema["schema"]
        if schema.get("type") != "object":
            raise UnsupportedFeatureError(
                "Anthropic's JSON output (a forced tool call) needs a schema of type 'object'",
                hint='wrap the schema: {"type": "object", "properties": {"value": …}}',
            )
    return {
        "name": JSON_TOOL,
        "description": "Give the answer as JSON matching this schema.",
        "input_schema": schema,
    }


def request_body(
    model: str, messages: Sequence[Message], options: ChatOptions, *, max_tokens: int, stream: bool
) -> tuple[dict[str, Any], bool]:
    """The ``/messages`` body for a call, and whether the JSON tool answers it.

    ``temperature`` is capped at 1.0 (Anthropic's maximum; ours allows 2.0). ``seed`` is
    ignored: the Messages API has no seed. ``user`` becomes ``metadata.user_id``. A JSON
    ``response_format`` adds the :data:`JSON_TOOL` tool and forces it (or, next to the
    caller's own tools, forces *some* tool call, so the answer is a call or JSON).
    """
    o = options
    system, turns = translate_messages(messages)
    body: dict[str, Any] = {"model": model, "max_tokens": o.max_tokens or max_tokens}
    if system:
        body["system"] = system
    body["messages"] = turns
    if stream:
        body["stream"] = True
    if o.temperature is not None:
        body["temperature"] = min(o.temperature, 1.0)
    if o.top_p is not None:
        body["top_p"] = o.top_p
    if o.stop:
        body["stop_sequences"] = o.stop
    if o.user is not None:
        body["metadata"] = {"user_id": o.user}
    tools: list[dict[str, Any]] = []
    for t in o.tools or ():
        tool: dict[str, Any] = {"name": t.name, "input_schema": t.parameters}
        if t.description:
            tool["description"] = t.description
        tools.append(tool)
    choice = o.tool_choice
    tool_choice: dict[str, str] | None = None
    if choice is not None:
        tool_choice = _TOOL_CHOICE.get(choice) or {"type": "tool", "name": choice}
    fmt = o.response_format
    json_mode = fmt is not None and fmt.type != "text"
    if fmt is not None and json_mode:
        if not tools or choice == "none":
            tools = [_json_tool(fmt)]
            tool_choice = {"type": "tool", "name": JSON_TOOL}
        else:
            tools.append(_json_tool(fmt))
            if choice in (None, "auto", "required"):
                tool_choice = {"type": "any"}
    if tools:
        body["tools"] = tools
    if tool_choice is not None:
        body["tool_choice"] = tool_choice
    if o.extra_body:
        body.update(o.extra_body)
    return body, json_mode


# --- response translation -----------------------------------------------------------------------


def _usage(raw: Mapping[str, Any]) -> Usage:
    # Anthropic's input_tokens excludes cached and cache-written tokens; ours is the whole prompt.
    cached = raw.get("cache_read_input_tokens") or 0
    written = raw.get("cache_creation_input_tokens") or 0
    return Usage(
        prompt_tokens=(raw.get("input_tokens") or 0) + cached + written,
        completion_tokens=raw.get("output_tokens") or 0,
        cached_tokens=cached,
    )


def _finish(stop_reason: str | None, has_calls: bool) -> FinishReason:
    reason = _FINISH.get(stop_reason or "", "stop")
    # A tool_use stop that only produced the JSON answer is a normal stop for the caller.
    return "stop" if reason == "tool_calls" and not has_calls else reason


def _arguments(block: Mapping[str, Any]) -> str:
    return json.dumps(block.get("input") or {}, ensure_ascii=False)


def parse_response(data: Mapping[str, Any], model: str, json_mode: bool) -> ChatResponse:
    """A :class:`ChatResponse` from a non-streamed ``/messages`` answer."""
    texts: list[str] = []
    calls: list[ToolCall] = []
    for block in data.get("content") or ():
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "tool_use":
            if json_mode and block.get("name") == JSON_TOOL:
                texts.append(_arguments(block))
            else:
                calls.append(ToolCall(block["id"], block["name"], _arguments(block)))
    return ChatResponse(
        text="".join(texts),
        model=data.get("model") or model,
        tool_calls=calls,
        usage=_usage(data.get("usage") or {}),
        finish_reason=_finish(data.get("stop_reason"), bool(calls)),
    )


async def translate_stream(
    lines: AsyncIterator[str], *, json_mode: bool, provider: str, deadline: float | None = None
) -> AsyncGenerator[StreamEvent, None]:
    """Our stream events from the lines of an Anthropic SSE stream.

    Only ``data:`` lines are read (each carries its event name as ``type``; Anthropic sends one
    data line per event). Tool calls are numbered 0.. among tool blocks. ``deadline`` (event
    loop time) bounds the wait for the first token.
    """
    raw_usage: dict[str, Any] = {}
    stop_reason: str | None = None
    tool_index: dict[int, int] = {}  # content block index → our tool-call index
    json_blocks: set[int] = set()
    waiting = deadline is not None
    while True:
        try:
            if waiting:
                async with asyncio.timeout_at(deadline):
                    line = await anext(lines)
            else:
                line = await anext(lines)
        except StopAsyncIteration:
            raise UpstreamUnavailableError(
                f"the stream from {provider} ended before message_stop", provider=provider
            ) from None
        if not line.startswith("data:"):
            continue  # event: names, blank separators, comments
        try:
            data = json.loads(line[5:])
        except ValueError:
            raise malformed(provider, line[5:]) from None
        try:
            kind = data["type"]
            if kind == "content_block_delta":
                delta = data["delta"]
                dkind = delta["type"]
                if dkind == "text_delta":
                    waiting = False
                    yield TextDelta(delta["text"])
                elif dkind == "input_json_delta":
                    piece = delta["partial_json"]
                    index = data["index"]
                    if not piece:
                        continue
                    waiting = False
                    if index in json_blocks:
                        yield TextDelta(piece)
                    elif index in tool_index:
                        yield ToolCallDelta(tool_index[index], arguments=piece)
                # thinking_delta / signature_delta / citations_delta: not part of our events
            elif kind == "content_block_start":
                block = data["content_block"]
                btype = block["type"]
                if btype == "tool_use":
                    if json_mode and block["name"] == JSON_TOOL:
                        json_blocks.add(data["index"])
                    else:
                        n = tool_index[data["index"]] = len(tool_index)
                        waiting = False
                        yield ToolCallDelta(n, id=block["id"], name=block["name"])
                elif btype == "text" and block.get("text"):
                    waiting = False
                    yield TextDelta(block["text"])
            elif kind == "message_start":
                raw_usage.update(data["message"].get("usage") or {})
            elif kind == "message_delta":
                stop_reason = data["delta"].get("stop_reason") or stop_reason
                for key, value in (data.get("usage") or {}).items():
                    if value is not None:
                        raw_usage[key] = value
            elif kind == "message_stop":
                yield UsageEvent(_usage(raw_usage))
                yield Finish(_finish(stop_reason, bool(tool_index)))
                return
            elif kind == "error":
                err = data.get("error") or {}
                etype = err.get("type") or "api_error"
                status = _ERROR_STATUS.get(etype, 500)
                raise _typed_error(status, err.get("message") or etype, etype, provider, None)
            # ping, content_block_stop and unknown future events need nothing
        except (KeyError, TypeError, AttributeError) as exc:
            raise UpstreamUnavailableError(
                f"{provider} sent a stream event of an unexpected shape ({exc!r} missing or wrong)",
                provider=provider,
            ) from None


# --- errors -------------------------------------------------------------------------------------


def _typed_error(
    status: int, message: str, etype: str | None, provider: str, retry_after: float | None
) -> ModelError:
    text = f"{provider}: {message} ({etype or 'error'}, HTTP {status})"
    error = error_for_status(status, text, provider=provider, retry_after=retry_after, code=etype)
    if isinstance(error, RateLimitError) and error.retry_after is None:
        # error_for_status drops retry_after when it maps by error code (rate_limit_error)
        error.retry_after = retry_after
    return error


def http_error(response: httpx.Response, provider: str) -> ModelError:
    """The typed error for a non-2xx answer, by status and the body's ``error.type``."""
    status = response.status_code
    etype: str | None = None
    message = response.reason_phrase or "error"
    try:
        err = json.loads(response.content)["error"]
        etype = err.get("type")
        message = err.get("message") or message
    except (ValueError, KeyError, TypeError, AttributeError):
        if response.content:
            message = f"{message}: {response.content[:200].decode('utf-8', 'replace')!r}"
    return _typed_error(status, message, etype, provider, retry_after(response.headers))


def broken(provider: str, exc: httpx.TransportError, mid_stream: bool = False) -> ModelError:
    where = "broke mid-stream" if mid_stream else "failed"
    return UpstreamUnavailableError(
        f"the connection to {provider} {where}: {type(exc).__name__}: {exc}", provider=provider
    )


def timed_out(provider: str, timeout: float | None, streaming: bool) -> ModelError:
    what = "sent no first token" if streaming else "did not answer"
    within = f" within {timeout:g} s" if timeout else ""
    return ModelTimeoutError(
        f"{provider} {what}{within}",
        hint="raise options.timeout, or add a fallback deployment",
        provider=provider,
    )
