"""Server-sent events: the framing (``event:`` / ``data:`` lines, a blank line after each event)
and a streaming response that proxies do not buffer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

DONE = b"data: [DONE]\n\n"
#: a comment line: keeps idle connections open through proxies, ignored by clients
KEEPALIVE = b": keep-alive\n\n"


def dumps(data: Any) -> str:
    """Compact JSON that keeps Chinese text readable."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)


def event(data: Mapping[str, Any] | str, name: str | None = None) -> bytes:
    """One SSE event. ``data`` must not contain newlines when it is a string (JSON never does)."""
    payload = data if isinstance(data, str) else dumps(data)
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {payload}\n\n".encode()


class EventStream(StreamingResponse):
    """A ``text/event-stream`` response whose ``on_close`` runs however the stream ends —
    finished, failed, or cut off by the client — even if the body never started."""

    def __init__(
        self,
        body: AsyncIterator[bytes],
        on_close: Callable[[], Awaitable[None]] | None = None,
        status_code: int = 200,
    ) -> None:
        super().__init__(
            body,
            status_code=status_code,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self._body = body
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                aclose = getattr(self._body, "aclose", None)
                if aclose is not None:
                    await aclose()
                if self._on_close is not None:
                    await self._on_close()


def response(
    body: AsyncIterator[bytes], on_close: Callable[[], Awaitable[None]] | None = None
) -> EventStream:
    """A ``text/event-stream`` response of already-framed events."""
    return EventStream(body, on_close)
