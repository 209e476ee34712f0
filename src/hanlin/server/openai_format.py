"""OpenAI's wire format for the server: request bodies → gateway calls, and gateway results /
RAG answers → ``chat.completion`` objects and ``chat.completion.chunk`` SSE streams, exactly as
OpenAI sends them (ids, ``created``, ``object``, a role chunk first, tool-call deltas, a final
chunk with ``finish_reason``, a usage chunk with ``choices: []`` when asked, ``data: [DONE]``).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hanlin.errors import InvalidInputError
from hanlin.models.gateway import as_options
from hanlin.models.types import (
    ChatOptions,
    ChatResponse,
    Finish,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
    UsageEvent,
)
from hanlin.prompts.base import LABEL_RE
from hanlin.rag.base import Answer, AnswerDelta, AnswerDone, Citation, RagEvent
from hanlin.server import sse

#: request fields checked (or, for prediction, a latency hint with the same output) here:
#: never forwarded, since other providers reject them
_DROPPED = {"store", "metadata", "service_tier", "stream_options", "prediction", "modalities"}
_PASSED = ("presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs")
#: what each kind of model does with the fields a gateway model passes to its provider
#: (docs/server.md has the whole table); the others are refused with a 400 naming the field
_KB_FIELDS = {"temperature", "top_p", "seed", "max_tokens", "max_completion_tokens", "stop"}
_KB_SUPPORTED = (
    "messages, stream, stream_options, user, temperature, top_p, seed, max_tokens, "
    "max_completion_tokens, stop and the hanlin extension field"
)
_AGENT_SUPPORTED = "messages, stream, stream_options and user"
_HANDLED = {"model", "messages", "stream", "user", "n", "hanlin", "parallel_tool_calls"}


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class HanlinChatOptions(BaseModel):
    """The ``hanlin`` extension field: how ``kb:`` models answer."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["auto", "extractive", "generative"] = "auto"
    k: int | None = Field(default=None, ge=1, le=100)
    filters: dict[str, Any] | None = None
    #: the label the answer's prompts are read at (default: prompts.kb_labels / prompts.label)
    prompt_label: str | None = Field(default=None, pattern=LABEL_RE.pattern)


class ChatCompletionRequest(BaseModel):
    """OpenAI's request body. Fields not listed are passed to the upstream provider
    (``extra_body``), as a gateway would."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    messages: list[dict[str, Any]] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    response_format: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    user: str | None = None
    n: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    hanlin: HanlinChatOptions | None = None

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    input: str | list[str] | list[int] | list[list[int]]
    model: str = Field(min_length=1)
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None


def _bad(message: str) -> InvalidInputError:
    return InvalidInputError(message, hint="the request follows OpenAI's chat completions format")


def _tools(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    tools = []
    for i, item in enumerate(raw):
        fn = item.get("function") if item.get("type", "function") == "function" else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise _bad(f"tools[{i}]: needs type 'function' and function.name")
        params = fn.get("parameters")
        tool: dict[str, Any] = {"name": fn["name"], "description": str(fn.get("description", ""))}
        if fn.get("strict") is not None:
            tool["strict"] = bool(fn["strict"])
        if params is not None:
            if not isinstance(params, dict):
                raise _bad(f"tools[{i}].function.parameters must be a JSON schema object")
            tool["parameters"] = params
        tools.append(tool)
    return tools


def _tool_choice(raw: str | dict[str, Any]) -> str:
    if isinstance(raw, str):
        return raw
    fn = raw.get("function")
    if raw.get("type") == "function" and isinstance(fn, dict) and isinstance(fn.get("name"), str):
        return str(fn["name"])
    raise _bad("tool_choice must be auto, none, required or {type: function, function: {name}}")


def _response_format(raw: dict[str, Any]) -> dict[str, Any] | None:
    kind = raw.get("type")
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        spec = raw.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
            raise _bad("response_format json_schema needs json_schema.schema")
        return {
            "type": "json_schema",
            "json_schema": spec["schema"],
            "name": str(spec.get("name") or "response"),
            # as sent: OpenAI's default is false, and strict mode refuses many schemas
            "strict": bool(spec.get("strict")),
            "description": spec.get("description"),
        }
    raise _bad(f"response_format type {kind!r} is not text, json_object or json_schema")


def _sent(name: str, value: Any) -> bool:
    """Whether a field asks for something (an empty or "off" value asks for nothing)."""
    if value is None or value is False or value in ([], {}, ""):
        return False
    if name == "tool_choice":
        return value not in ("auto", "none")
    if name == "response_format":
        return isinstance(value, dict) and value.get("type") not in (None, "text")
    return True


def _refuse(name: str, model: str, supported: str) -> InvalidInputError:
    return InvalidInputError(
        f"{model} does not support {name}",
        hint=f"{model} takes {supported}; leave {name} out",
        param=name,
    )


def check_fields(
    req: ChatCompletionRequest, kind: Literal["gateway", "kb", "agent", "workflow"]
) -> None:
    """Refuse, with a 400 naming the field, what a kind of model cannot honour (the table in
    docs/server.md); what passes is honoured or handed to a provider that refuses it."""
    extra = req.model_extra or {}
    if req.n not in (None, 1):
        raise InvalidInputError(
            f"n = {req.n}: only one choice per request is supported",
            hint="leave n out (or 1) and send the request once per choice",
            param="n",
        )
    modalities = extra.get("modalities")
    if modalities not in (None, ["text"]):
        raise InvalidInputError(
            f"modalities {modalities!r}: only text output is supported",
            hint='leave modalities out or send ["text"]',
            param="modalities",
        )
    if extra.get("audio") is not None:
        raise InvalidInputError(
            "audio output is not supported", hint="leave audio out", param="audio"
        )
    if extra.get("store"):
        raise InvalidInputError(
            "store: this server does not keep completions",
            hint="leave store out",
            param="store",
        )
    if extra.get("metadata"):
        raise InvalidInputError(
            "metadata is kept only with stored completions, which this server does not keep",
            hint="leave metadata out",
            param="metadata",
        )
    if extra.get("service_tier") not in (None, "auto", "default"):
        raise InvalidInputError(
            f"service_tier {extra['service_tier']!r} is not offered",
            hint="leave service_tier out, or send auto or default",
            param="service_tier",
        )
    for old in ("functions", "function_call"):
        if _sent(old, extra.get(old)):
            raise InvalidInputError(
                f"{old} is the deprecated form of tools",
                hint="send tools and tool_choice",
                param=old,
            )
    if req.hanlin is not None and kind != "kb":
        raise _refuse("hanlin", req.model, "the hanlin field only with kb: models")
    if kind == "gateway":
        return
    fields = {**extra, **{k: getattr(req, k) for k in req.model_fields_set}}
    allowed = _HANDLED | _DROPPED | {"functions", "function_call", "audio"}
    if kind == "kb":
        allowed |= _KB_FIELDS
    supported = _KB_SUPPORTED if kind == "kb" else _AGENT_SUPPORTED
    for name, value in fields.items():
        if name not in allowed and _sent(name, value):
            raise _refuse(name, req.model, supported)


def kb_generation(req: ChatCompletionRequest) -> dict[str, Any]:
    """The generation options a ``kb:`` model honours (see :meth:`RagEngine.astream`)."""
    options: dict[str, Any] = {}
    for name in ("temperature", "top_p", "seed"):
        if getattr(req, name) is not None:
            options[name] = getattr(req, name)
    if (max_tokens := req.max_completion_tokens or req.max_tokens) is not None:
        options["max_tokens"] = max_tokens
    if req.stop:
        options["stop"] = [req.stop] if isinstance(req.stop, str) else req.stop
    return options


def chat_options(req: ChatCompletionRequest, user: str | None) -> ChatOptions:
    """Gateway options for a request. ``user`` (the API key's id) wins over the body's."""
    check_fields(req, "gateway")
    data: dict[str, Any] = {}
    for name in ("temperature", "top_p", "seed"):
        if getattr(req, name) is not None:
            data[name] = getattr(req, name)
    if (max_tokens := req.max_completion_tokens or req.max_tokens) is not None:
        data["max_tokens"] = max_tokens
    if req.stop is not None:
        data["stop"] = [req.stop] if isinstance(req.stop, str) else req.stop
    if req.response_format is not None:
        data["response_format"] = _response_format(req.response_format)
    if req.tools:
        data["tools"] = _tools(req.tools)
    if req.tool_choice is not None:
        data["tool_choice"] = _tool_choice(req.tool_choice)
    if user or req.user:
        data["user"] = user or req.user
    extra = {k: v for k, v in (req.model_extra or {}).items() if k not in _DROPPED}
    extra |= {k: getattr(req, k) for k in _PASSED if getattr(req, k) is not None}
    if req.parallel_tool_calls is not None and req.tools:  # without tools it asks for nothing
        extra["parallel_tool_calls"] = req.parallel_tool_calls
    if extra:
        data["extra_body"] = extra
    return as_options(None, data)


# -- responses -------------------------------------------------------------------------------


def new_id() -> str:
    return "chatcmpl-" + secrets.token_hex(12)


def usage_dict(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    }


def _tool_calls(calls: list[ToolCall]) -> list[dict[str, Any]]:
    return [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for c in calls
    ]


def _finish(reason: str) -> str:
    return "stop" if reason == "error" else reason


def _logprobs(content: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    return None if content is None else {"content": content, "refusal": None}


def completion(
    model: str,
    text: str | None,
    usage: Usage,
    *,
    finish_reason: str = "stop",
    tool_calls: list[ToolCall] | None = None,
    extra: dict[str, Any] | None = None,
    logprobs: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A whole ``chat.completion`` object."""
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    if tool_calls:
        message["tool_calls"] = _tool_calls(tool_calls)
    body = {
        "id": new_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": _logprobs(logprobs),
                "finish_reason": _finish(finish_reason),
            }
        ],
        "usage": usage_dict(usage),
    }
    return body | (extra or {})


def gateway_completion(model: str, resp: ChatResponse) -> dict[str, Any]:
    return completion(
        model,
        resp.text if resp.text or not resp.tool_calls else None,
        resp.usage,
        finish_reason=resp.finish_reason,
        tool_calls=resp.tool_calls,
        extra={"hanlin": {"served_by": resp.served_by} | guard_extra(resp.guard)},
        logprobs=resp.logprobs,
    )


def guard_extra(notice: dict[str, Any] | None) -> dict[str, Any]:
    """``{"guard": notice}`` when the guard masked, blocked, removed or flagged something (what
    the web UI's notice shows; counts and rule ids, never values)."""
    return {"guard": notice} if notice else {}


class Chunks:
    """Builds the SSE chunks of one streamed completion."""

    def __init__(self, model: str, include_usage: bool) -> None:
        self.id = new_id()
        self.created = int(time.time())
        self.model = model
        self.include_usage = include_usage

    def _base(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": choices,
        }

    def delta(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        return self._chunk(delta, finish, None, extra)

    def content(self, text: str, logprobs: list[dict[str, Any]] | None) -> bytes:
        """A text delta with its tokens' log probabilities (None when not asked for)."""
        return self._chunk({"content": text}, None, logprobs, {})

    def _chunk(
        self,
        delta: dict[str, Any],
        finish: str | None,
        logprobs: list[dict[str, Any]] | None,
        extra: dict[str, Any],
    ) -> bytes:
        choice = {
            "index": 0,
            "delta": delta,
            "logprobs": _logprobs(logprobs),
            "finish_reason": finish,
        }
        body = self._base([choice])
        if self.include_usage:
            body["usage"] = None
        return sse.event(body | extra)

    def usage(self, usage: Usage) -> bytes:
        return sse.event(self._base([]) | {"usage": usage_dict(usage)})


def _tool_delta(event: ToolCallDelta) -> dict[str, Any]:
    call: dict[str, Any] = {"index": event.index}
    function: dict[str, Any] = {}
    if event.id:
        call["id"] = event.id
        call["type"] = "function"
    if event.name:
        function["name"] = event.name
    function["arguments"] = event.arguments
    call["function"] = function
    return call


async def gateway_chunks(
    chunks: Chunks, first: StreamEvent | None, rest: AsyncIterator[StreamEvent]
) -> AsyncIterator[bytes]:
    """A gateway stream as OpenAI chunks (``first`` was read already, to fail before 200)."""
    yield chunks.delta({"role": "assistant", "content": ""})
    finish, usage = "stop", Usage()

    async def events() -> AsyncIterator[StreamEvent]:
        if first is not None:
            yield first
        async for event in rest:
            yield event

    async for event in events():
        if isinstance(event, TextDelta):
            if event.text or event.logprobs is not None:
                yield chunks.content(event.text, event.logprobs)
        elif isinstance(event, ToolCallDelta):
            yield chunks.delta({"tool_calls": [_tool_delta(event)]})
        elif isinstance(event, UsageEvent):
            usage = event.usage
        elif isinstance(event, Finish):
            finish = _finish(event.reason)
    # the gateway's stream has ended: its response says what the guard did
    done = getattr(rest, "response", None)
    notice = guard_extra(getattr(done, "guard", None))
    yield chunks.delta({}, finish, **({"hanlin": notice} if notice else {}))
    if chunks.include_usage:
        yield chunks.usage(usage)
    yield sse.DONE


# -- knowledge-base answers ------------------------------------------------------------------

Labeler = Callable[[Citation], str]


def cite_label(c: Citation, source: str | None = None) -> str:
    """``title — source, p. 3`` (the source left out when it adds nothing)."""
    src = source if source is not None else c.source
    label = c.title or src
    if src and src != label:
        label += f" — {src}"
    if c.page is not None:
        pages = f"{c.page}" if c.page_end in (None, c.page) else f"{c.page}–{c.page_end}"
        label += f", p. {pages}"
    return label


def footnotes(citations: list[Citation], label: Labeler = cite_label) -> str:
    """Markdown lines after the answer so plain clients show the sources."""
    if not citations:
        return ""
    return "\n\n" + "\n".join(f"[{c.n}]: {label(c)}" for c in citations)


def answer_extra(answer: Answer) -> dict[str, Any]:
    """The extension fields of a ``kb:`` answer."""
    return {
        "citations": [c.to_dict() for c in answer.citations],
        "hanlin": {
            "mode": answer.mode,
            "usage_estimated": answer.usage_estimated,
            "notes": answer.notes,
            "evidence": [e.to_dict() for e in answer.evidence],
            "standalone_question": answer.standalone_question,
            "timings_ms": {k: round(v, 2) for k, v in answer.timings_ms.items()},
            "model": answer.model,
        }
        | guard_extra(answer.guard),
    }


def answer_completion(model: str, answer: Answer, label: Labeler = cite_label) -> dict[str, Any]:
    text = answer.text + footnotes(answer.citations, label)
    return completion(
        model, text, answer.usage, finish_reason=answer.finish_reason, extra=answer_extra(answer)
    )


async def answer_chunks(
    chunks: Chunks, first: RagEvent, rest: AsyncIterator[RagEvent], label: Labeler = cite_label
) -> AsyncIterator[bytes]:
    """A RAG stream as OpenAI chunks; citations ride on the chunk with ``finish_reason``."""
    yield chunks.delta({"role": "assistant", "content": ""})

    async def events() -> AsyncIterator[RagEvent]:
        yield first
        async for event in rest:
            yield event

    async for event in events():
        if isinstance(event, AnswerDelta) and event.text:
            yield chunks.delta({"content": event.text})
        elif isinstance(event, AnswerDone):
            answer = event.answer
            notes = footnotes(answer.citations, label)
            if notes:
                yield chunks.delta({"content": notes})
            yield chunks.delta({}, answer.finish_reason, **answer_extra(answer))
            if chunks.include_usage:
                yield chunks.usage(answer.usage)
    yield sse.DONE


def parse_kb_model(model: str) -> tuple[str, str | None] | None:
    """``kb:NAME`` → (NAME, None); ``hanlin:kb:NAME@MODEL`` → (NAME, MODEL); else None."""
    rest = model.removeprefix("hanlin:")
    if not rest.startswith("kb:"):
        if rest != model:
            raise InvalidInputError(
                f"unknown model {model!r}", hint="hanlin models are hanlin:kb:NAME[@MODEL]"
            )
        return None
    name, _, generator = rest[3:].partition("@")
    if not name:
        raise InvalidInputError("kb: needs a knowledge-base name", hint="use kb:NAME")
    return name, generator or None


def split_conversation(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """(the question: the last user message, the earlier user/assistant turns)."""
    from hanlin.models.gateway import as_messages

    turns = as_messages(messages)
    if turns[-1].role != "user" or not turns[-1].text.strip():
        raise _bad("the last message must be the user's question (with text) for kb: models")
    history = [
        {"role": m.role, "content": m.text} for m in turns[:-1] if m.role in ("user", "assistant")
    ]
    return turns[-1].text, history
