"""Any OpenAI-compatible endpoint: OpenAI, the Chinese platforms, aggregators, local engines.

Speaks ``/chat/completions`` (streamed and not), ``/embeddings`` and ``/rerank`` over httpx with
one pooled client per provider instance. Requests and responses are plain dicts — no schema
validation on the hot path. Endpoint quirks live in :mod:`hanlin.models.providers.dialects`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar

import httpx

from hanlin.models.base import Endpoint
from hanlin.models.errors import (
    ModelError,
    ModelTimeoutError,
    UpstreamUnavailableError,
    error_for_status,
)
from hanlin.models.providers.dialects import get_dialect
from hanlin.models.providers.http_shared import drain, malformed, retry_after
from hanlin.models.providers.presets import PRESETS
from hanlin.models.types import (
    AudioPart,
    ChatOptions,
    ChatResponse,
    ContentPart,
    FilePart,
    Finish,
    FinishReason,
    ImagePart,
    Message,
    StreamEvent,
    TextDelta,
    Tool,
    ToolCall,
    ToolCallDelta,
    Usage,
    UsageEvent,
)

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    "sensitive": "content_filter",  # Zhipu
    "network_error": "error",  # Zhipu
}
#: Connection pools per provider. httpcore scans its whole pool for every queued request
#: (encode/httpcore#1035), which costs milliseconds per call at 50+ calls in flight; several
#: smaller pools, used in turn, keep each scan short.
POOL_SHARDS = 8
_LIMITS = httpx.Limits(
    max_connections=1000 // POOL_SHARDS, max_keepalive_connections=64, keepalive_expiry=30
)
DEFAULT_TIMEOUT = 600.0


def _part_dict(p: ContentPart) -> dict[str, Any]:
    """A content part in OpenAI's wire format."""
    if isinstance(p, ImagePart):
        return {"type": "image_url", "image_url": {"url": p.url, "detail": p.detail}}
    if isinstance(p, FilePart):
        file = {"file_data": p.data, "file_id": p.file_id, "filename": p.filename}
        return {"type": "file", "file": {k: v for k, v in file.items() if v is not None}}
    if isinstance(p, AudioPart):
        return {"type": "input_audio", "input_audio": {"data": p.data, "format": p.format}}
    return {"type": "text", "text": p.text}


def message_dict(m: Message) -> dict[str, Any]:
    """A message in OpenAI's wire format."""
    out: dict[str, Any] = {"role": m.role}
    content = m.content
    if isinstance(content, list):
        out["content"] = [_part_dict(p) for p in content]
    else:
        out["content"] = content
    if m.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in m.tool_calls
        ]
    if m.tool_call_id is not None:
        out["tool_call_id"] = m.tool_call_id
    if m.name is not None:
        out["name"] = m.name
    return out


def _logprobs(choice: dict[str, Any]) -> list[dict[str, Any]] | None:
    """A choice's token log probabilities (``logprobs.content``), when the upstream sent any."""
    content = (choice.get("logprobs") or {}).get("content")
    return content if isinstance(content, list) else None


def _function(tool: Tool) -> dict[str, Any]:
    fn = {"name": tool.name, "description": tool.description, "parameters": tool.parameters}
    return fn if tool.strict is None else fn | {"strict": tool.strict}


def request_body(
    model: str, messages: Sequence[Message], options: ChatOptions, stream: bool
) -> dict[str, Any]:
    """The ``/chat/completions`` body for a call (before the dialect adjusts it)."""
    body: dict[str, Any] = {"model": model, "messages": [message_dict(m) for m in messages]}
    if stream:
        body["stream"] = True
    o = options
    for name in ("temperature", "top_p", "max_tokens", "stop", "seed", "user"):
        value = getattr(o, name)
        if value is not None:
            body[name] = value
    fmt = o.response_format
    if fmt is not None and fmt.type != "text":
        if fmt.type == "json_schema":
            spec: dict[str, Any] = {"name": fmt.name, "schema": fmt.json_schema}
            if fmt.description:
                spec["description"] = fmt.description
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": spec | {"strict": fmt.strict},
            }
        else:
            body["response_format"] = {"type": "json_object"}
    if o.tools:
        body["tools"] = [{"type": "function", "function": _function(t)} for t in o.tools]
    if o.tool_choice is not None:
        choice = o.tool_choice
        body["tool_choice"] = (
            choice
            if choice in ("auto", "none", "required")
            else {"type": "function", "function": {"name": choice}}
        )
    if o.extra_body:
        body.update(o.extra_body)
    return body


def http_error(status: int, headers: httpx.Headers, content: bytes, provider: str) -> ModelError:
    """The typed error for a non-2xx answer, using the body's machine-readable code if any."""
    message = f"HTTP {status} from {provider}"
    code: str | None = None
    try:
        body = json.loads(content) if content else None
    except ValueError:
        body = None
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            message = f"{message}: {err.get('message') or err.get('msg') or ''}".rstrip(": ")
            raw_code = err.get("code") or err.get("type")
            code = str(raw_code) if raw_code is not None else None
        elif isinstance(err, str):
            message = f"{message}: {err}"
    return error_for_status(
        status, message, provider=provider, retry_after=retry_after(headers), code=code
    )


def _loads(raw: str | bytes, provider: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise malformed(provider, raw) from None


def _pooled(embedding: list[Any]) -> list[float]:
    """A vector; per-token vectors (llama.cpp servers on models without pooling) are mean-pooled."""
    if embedding and isinstance(embedding[0], list):
        n = len(embedding)
        return [sum(col) / n for col in zip(*embedding, strict=True)]
    return [float(x) for x in embedding]


class OpenAICompatProvider:
    """A provider for one OpenAI-compatible endpoint (see :mod:`.presets` for the built-in ones)."""

    supports_streaming: ClassVar[bool] = True
    supports_tools: ClassVar[bool] = True
    supports_embeddings: ClassVar[bool] = True
    supports_rerank: ClassVar[bool] = True

    def __init__(
        self,
        endpoint: Endpoint,
        key: str | None,
        *,
        client: httpx.AsyncClient | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.endpoint = endpoint
        self._key = key
        self._client = client
        self._shards: list[httpx.AsyncClient] = []
        self._turn = 0
        self._timeout = timeout
        self._default_timeout = httpx.Timeout(timeout)
        self._dialect = get_dialect(endpoint.dialect)
        self._base = endpoint.base_url.rstrip("/")
        self._headers = {"Content-Type": "application/json", **self._dialect.headers(key)}

    def __repr__(self) -> str:  # never the key
        return f"OpenAICompatProvider(endpoint={self.endpoint.name!r}, base_url={self._base!r})"

    @staticmethod
    def presets() -> Sequence[Endpoint]:
        return PRESETS

    @property
    def client(self) -> httpx.AsyncClient:
        """The HTTP client for the next request (one of the pool shards, in turn)."""
        if self._client is not None:
            return self._client
        if not self._shards:
            self._shards = [
                httpx.AsyncClient(limits=_LIMITS, timeout=self._timeout) for _ in range(POOL_SHARDS)
            ]
        self._turn = (self._turn + 1) % POOL_SHARDS
        return self._shards[self._turn]

    def _label(self, model: str) -> str:
        return f"{self.endpoint.name}/{model}"

    def _timeout_for(self, options: ChatOptions) -> httpx.Timeout:
        if options.timeout:
            return httpx.Timeout(options.timeout)
        return self._default_timeout

    async def _post(
        self, path: str, body: dict[str, Any], label: str, timeout: httpx.Timeout
    ) -> Any:
        payload = json.dumps(body, ensure_ascii=False).encode()
        try:
            resp = await self.client.post(
                self._base + path, content=payload, headers=self._headers, timeout=timeout
            )
        except httpx.TimeoutException as exc:
            raise ModelTimeoutError(f"{label} did not answer in time", provider=label) from exc
        except httpx.TransportError as exc:
            raise UpstreamUnavailableError(
                f"cannot reach {label} at {self._base} ({type(exc).__name__})", provider=label
            ) from exc
        if resp.status_code >= 400:
            raise http_error(resp.status_code, resp.headers, resp.content, label)
        data = _loads(resp.content, label)
        if isinstance(data, dict):
            hidden = self._dialect.body_error(data, label)
            if hidden is not None:
                raise hidden
        return data

    async def complete(
        self, model: str, messages: Sequence[Message], options: ChatOptions
    ) -> ChatResponse:
        label = self._label(model)
        body = self._dialect.prepare(request_body(model, messages, options, False), options)
        timeout = self._timeout_for(options)
        if options.timeout:
            try:
                data = await asyncio.wait_for(
                    self._post("/chat/completions", body, label, timeout), options.timeout
                )
            except TimeoutError as exc:
                raise ModelTimeoutError(
                    f"{label} did not answer within {options.timeout} s", provider=label
                ) from exc
        else:
            data = await self._post("/chat/completions", body, label, timeout)
        try:
            choice = data["choices"][0]
            msg = choice.get("message") or {}
        except (KeyError, IndexError, TypeError):
            raise UpstreamUnavailableError(
                f"{label} answered without choices", provider=label
            ) from None
        calls = [
            ToolCall(
                id=c.get("id") or f"call_{i}",
                name=(c.get("function") or {}).get("name") or "",
                arguments=(c.get("function") or {}).get("arguments") or "{}",
            )
            for i, c in enumerate(msg.get("tool_calls") or [])
        ]
        usage_raw = data.get("usage") or choice.get("usage")
        return ChatResponse(
            text=msg.get("content") or "",
            model=data.get("model") or model,
            tool_calls=calls,
            usage=self._dialect.usage(usage_raw) if usage_raw else Usage(),
            finish_reason=_FINISH.get(choice.get("finish_reason") or "stop", "stop"),
            logprobs=_logprobs(choice),
        )

    async def stream(
        self, model: str, messages: Sequence[Message], options: ChatOptions
    ) -> AsyncIterator[StreamEvent]:
        label = self._label(model)
        body = self._dialect.prepare(request_body(model, messages, options, True), options)
        payload = json.dumps(body, ensure_ascii=False).encode()
        client = self.client
        request = client.build_request(
            "POST",
            self._base + "/chat/completions",
            content=payload,
            headers=self._headers,
            timeout=self._timeout_for(options),
        )
        try:
            if options.timeout:
                resp = await asyncio.wait_for(client.send(request, stream=True), options.timeout)
            else:
                resp = await client.send(request, stream=True)
        except (httpx.TimeoutException, TimeoutError) as exc:
            raise ModelTimeoutError(f"{label} sent no first byte in time", provider=label) from exc
        except httpx.TransportError as exc:
            raise UpstreamUnavailableError(
                f"cannot reach {label} at {self._base} ({type(exc).__name__})", provider=label
            ) from exc
        try:
            if resp.status_code >= 400:
                content = await resp.aread()
                raise http_error(resp.status_code, resp.headers, content, label)
            async for event in self._events(resp, label):
                yield event
        except httpx.TimeoutException as exc:
            raise ModelTimeoutError(f"{label} stalled mid-stream", provider=label) from exc
        except httpx.TransportError as exc:
            raise UpstreamUnavailableError(
                f"the connection to {label} broke mid-stream ({type(exc).__name__})", provider=label
            ) from exc
        finally:
            await resp.aclose()

    async def _events(self, resp: httpx.Response, label: str) -> AsyncIterator[StreamEvent]:
        dialect = self._dialect
        finish: FinishReason | None = None
        usage: Usage | None = None
        by_id: dict[str, int] = {}
        done = False
        lines = resp.aiter_lines()
        async for line in lines:
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                done = True
                await drain(lines)
                break
            obj = _loads(data, label)
            if not isinstance(obj, dict):
                continue
            if "error" in obj or "base_resp" in obj:
                hidden = dialect.body_error(obj, label)
                if hidden is not None:
                    raise hidden
            for choice in obj.get("choices") or ():
                delta = choice.get("delta") or {}
                text = delta.get("content")
                logprobs = _logprobs(choice)
                if text or logprobs:
                    yield TextDelta(text or "", logprobs)
                for tc in delta.get("tool_calls") or ():
                    call_id = tc.get("id") or None
                    index = tc.get("index")
                    if index is None:  # some endpoints omit it: group by id
                        index = (
                            by_id.setdefault(call_id, len(by_id))
                            if call_id
                            else max(by_id.values(), default=0)
                        )
                    fn = tc.get("function") or {}
                    yield ToolCallDelta(
                        int(index), call_id, fn.get("name") or None, fn.get("arguments") or ""
                    )
                reason = choice.get("finish_reason")
                if reason:
                    finish = _FINISH.get(reason, "stop")
                if choice.get("usage"):
                    usage = dialect.usage(choice["usage"])
            if obj.get("usage"):
                usage = dialect.usage(obj["usage"])
        if not done and finish is None:
            raise UpstreamUnavailableError(
                f"the stream from {label} ended before it finished", provider=label
            )
        if usage is not None:
            yield UsageEvent(usage)
        yield Finish(finish or "stop")

    async def embed(self, model: str, texts: Sequence[str]) -> list[list[float]]:
        label = self._label(model)
        data = await self._post(
            "/embeddings",
            {"model": model, "input": list(texts)},
            label,
            httpx.Timeout(self._timeout),
        )
        try:
            rows = sorted(data["data"], key=lambda r: r.get("index", 0))
            return [_pooled(r["embedding"]) for r in rows]
        except (KeyError, TypeError) as exc:
            raise UpstreamUnavailableError(
                f"{label} sent an embeddings answer without data", provider=label
            ) from exc

    async def rerank(
        self, model: str, query: str, documents: Sequence[str], top_n: int | None = None
    ) -> list[tuple[int, float]]:
        label = self._label(model)
        body: dict[str, Any] = {"model": model, "query": query, "documents": list(documents)}
        if top_n is not None:
            body["top_n"] = top_n
        data = await self._post("/rerank", body, label, httpx.Timeout(self._timeout))
        try:
            results = [(int(r["index"]), float(r["relevance_score"])) for r in data["results"]]
        except (KeyError, TypeError) as exc:
            raise UpstreamUnavailableError(
                f"{label} sent a rerank answer without results", provider=label
            ) from exc
        results.sort(key=lambda r: -r[1])
        return results[:top_n] if top_n else results

    async def aclose(self) -> None:
        for shard in self._shards:
            await shard.aclose()
        self._shards = []
