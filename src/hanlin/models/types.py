"""The gateway's vocabulary: messages, tools, options, stream events, usage and responses.

Messages and stream events are plain slotted dataclasses (they sit on the hot path of every
call); options are a pydantic model with ``extra="forbid"`` so a misspelt option is an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error"]


@dataclass(slots=True)
class TextPart:
    """A piece of text inside a message."""

    text: str
    type: Literal["text"] = "text"


@dataclass(slots=True)
class ImagePart:
    """An image, by URL (``https://…`` or a ``data:`` URL with base64 bytes)."""

    url: str
    detail: Literal["auto", "low", "high"] = "auto"
    type: Literal["image"] = "image"

    @property
    def media_type(self) -> str | None:
        """The MIME type of a ``data:`` URL, else None."""
        if self.url.startswith("data:"):
            return self.url[5:].split(";", 1)[0] or None
        return None

    @property
    def base64_data(self) -> str | None:
        """The base64 payload of a ``data:`` URL, else None."""
        if self.url.startswith("data:") and ";base64," in self.url:
            return self.url.split(";base64,", 1)[1]
        return None


@dataclass(slots=True)
class FilePart:
    """A document for the model to read (a PDF): a ``data:`` URL with base64 bytes, or the id
    of a file uploaded to the provider. OpenAI's ``file`` content part."""

    data: str | None = None
    file_id: str | None = None
    filename: str | None = None
    type: Literal["file"] = "file"

    @property
    def media_type(self) -> str | None:
        """The MIME type of the ``data:`` URL, else None."""
        if self.data and self.data.startswith("data:"):
            return self.data[5:].split(";", 1)[0] or None
        return None

    @property
    def base64_data(self) -> str | None:
        """The base64 payload of the ``data:`` URL, else None."""
        if self.data and self.data.startswith("data:") and ";base64," in self.data:
            return self.data.split(";base64,", 1)[1]
        return None


@dataclass(slots=True)
class AudioPart:
    """Sound for the model to hear: base64 bytes and their ``format`` (wav, mp3).
    OpenAI's ``input_audio`` content part."""

    data: str
    format: str
    type: Literal["audio"] = "audio"


ContentPart = TextPart | ImagePart | FilePart | AudioPart


@dataclass(slots=True)
class ToolCall:
    """A call the model asks for. ``arguments`` is the raw JSON text the model produced."""

    id: str
    name: str
    arguments: str


@dataclass(slots=True)
class Message:
    """One turn of a conversation.

    ``content`` is a string or a list of parts (text and images); assistant messages may carry
    ``tool_calls``; tool messages answer one call through ``tool_call_id``.
    """

    role: Role
    content: str | list[ContentPart] | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None

    @property
    def text(self) -> str:
        """The message's text with image parts left out."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content if isinstance(p, TextPart))

    @classmethod
    def system(cls, text: str) -> Message:
        return cls("system", text)

    @classmethod
    def user(cls, content: str | list[ContentPart]) -> Message:
        return cls("user", content)

    @classmethod
    def assistant(
        cls, text: str | None = None, tool_calls: list[ToolCall] | None = None
    ) -> Message:
        return cls("assistant", text, tool_calls=tool_calls)

    @classmethod
    def tool(cls, tool_call_id: str, content: str, name: str | None = None) -> Message:
        return cls("tool", content, tool_call_id=tool_call_id, name=name)


class Tool(BaseModel):
    """A function the model may call: a name, what it does, and a JSON schema of its arguments."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    #: OpenAI's structured-outputs mode for the arguments (None: not asked, as OpenAI's default)
    strict: bool | None = None


class ResponseFormat(BaseModel):
    """Plain text, any JSON object, or JSON matching a schema."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["text", "json_object", "json_schema"] = "text"
    json_schema: dict[str, Any] | None = None
    name: str = "response"
    strict: bool = True
    #: what the response is for; OpenAI shows it to the model with the schema
    description: str | None = None

    @model_validator(mode="after")
    def _schema_needed(self) -> ResponseFormat:
        if self.type == "json_schema" and not self.json_schema:
            raise ValueError("response_format type 'json_schema' needs a json_schema")
        return self


ToolChoice = Literal["auto", "none", "required"] | str


class ChatOptions(BaseModel):
    """Generation options every provider understands. Unknown options are an error.

    ``tool_choice`` is ``auto``, ``none``, ``required`` or the name of one tool to force.
    ``extra_body`` passes provider-specific fields through untouched (e.g. Qwen's
    ``enable_thinking``) for the cases this list does not cover.
    """

    model_config = ConfigDict(extra="forbid")

    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(default=None, ge=1)
    stop: list[str] | None = None
    seed: int | None = None
    response_format: ResponseFormat | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    #: seconds for the whole call (non-streaming) or until the first token (streaming)
    timeout: float | None = Field(default=None, gt=0)
    user: str | None = None
    extra_body: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _check_tool_choice(self) -> ChatOptions:
        choice = self.tool_choice
        if choice not in (None, "auto", "none", "required"):
            names = {t.name for t in self.tools or []}
            if choice not in names:
                raise ValueError(
                    f"tool_choice '{choice}' names no tool in tools ({', '.join(sorted(names))})"
                )
        return self


@dataclass(slots=True)
class Usage:
    """Tokens a call used. ``cached_tokens`` is the part of the prompt served from a cache."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cached_tokens + other.cached_tokens,
        )


# --- stream events ------------------------------------------------------------------------------


@dataclass(slots=True)
class TextDelta:
    """More answer text; ``logprobs`` holds OpenAI-shaped token entries when they were asked for
    (``{"token", "logprob", "bytes", "top_logprobs"}``), possibly on a delta with no text."""

    text: str
    logprobs: list[dict[str, Any]] | None = None
    type: Literal["text"] = "text"


@dataclass(slots=True)
class ToolCallDelta:
    """Part of a tool call: the first delta of an ``index`` carries id and name."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    type: Literal["tool_call"] = "tool_call"


@dataclass(slots=True)
class UsageEvent:
    """Token usage, usually at the end of a stream."""

    usage: Usage
    type: Literal["usage"] = "usage"


@dataclass(slots=True)
class Finish:
    """The model stopped, and why."""

    reason: FinishReason
    type: Literal["finish"] = "finish"


StreamEvent = TextDelta | ToolCallDelta | UsageEvent | Finish


@dataclass(slots=True)
class Cost:
    """What a call cost, in USD and CNY (one of them converted at the configured rate)."""

    usd: float = 0.0
    cny: float = 0.0

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.usd + other.usd, self.cny + other.cny)


@dataclass(slots=True)
class ChatResponse:
    """A finished chat call."""

    text: str
    model: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    finish_reason: FinishReason = "stop"
    cost: Cost | None = None
    #: the deployment that answered (``provider/model``), after routing and fallback
    served_by: str = ""
    cached: bool = False
    latency_ms: float = 0.0
    #: per-token log probabilities (OpenAI's ``choices[0].logprobs.content``), when asked for
    logprobs: list[dict[str, Any]] | None = None
    #: what the guard did (``hanlin.models.guarding.CallGuard.notice``): masked counts per
    #: type, the rule that blocked, links removed, flags; None when nothing happened
    guard: dict[str, Any] | None = None

    @property
    def message(self) -> Message:
        """The answer as an assistant message, ready to append to the conversation."""
        return Message.assistant(self.text or None, self.tool_calls or None)


class StreamAccumulator:
    """Folds stream events into a :class:`ChatResponse` (tool-call deltas joined by index)."""

    __slots__ = ("_calls", "_text", "finish_reason", "logprobs", "usage")

    def __init__(self) -> None:
        self._text: list[str] = []
        self.logprobs: list[dict[str, Any]] | None = None
        self._calls: dict[int, list[str]] = {}
        self.usage = Usage()
        self.finish_reason: FinishReason = "stop"

    def add(self, event: StreamEvent) -> None:
        if isinstance(event, TextDelta):
            self._text.append(event.text)
            if event.logprobs is not None:
                self.logprobs = (self.logprobs or []) + event.logprobs
        elif isinstance(event, ToolCallDelta):
            slot = self._calls.setdefault(event.index, ["", "", ""])
            if event.id:
                slot[0] = event.id
            if event.name:
                slot[1] += event.name if not slot[1] else ""
            slot[2] += event.arguments
        elif isinstance(event, UsageEvent):
            self.usage = event.usage
        else:
            self.finish_reason = event.reason

    @property
    def text(self) -> str:
        return "".join(self._text)

    @property
    def tool_calls(self) -> list[ToolCall]:
        return [
            ToolCall(id=s[0] or f"call_{i}", name=s[1], arguments=s[2] or "{}")
            for i, s in sorted(self._calls.items())
        ]

    def response(self, model: str) -> ChatResponse:
        return ChatResponse(
            text=self.text,
            model=model,
            tool_calls=self.tool_calls,
            usage=self.usage,
            finish_reason=self.finish_reason,
            logprobs=self.logprobs,
        )
