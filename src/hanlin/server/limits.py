"""A cap on every request body, enforced before the app reads it.

A body declared larger than the limit (``Content-Length``) is answered 413 at once, without
reading it; a body without a declared length (chunked) is counted as it arrives and answered 413
as soon as it passes the limit. The upload route streams to disk under its own limits
(``server.max_request_mb``, see :mod:`hanlin.server.uploads`); every other route is JSON and
gets ``server.max_json_mb``.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hanlin.server.errors import error_body

MiB = 1 << 20
#: ``POST /api/kb/{name}/files`` and ``POST /api/evals/datasets``: multipart uploads, limited
#: while streamed to disk
UPLOAD_ROUTE = re.compile(r"^/api/(kb/[^/]+/files|evals/datasets)/?$")


def is_upload(scope: Scope) -> bool:
    """Whether a request is a file upload (which keeps its own, larger limits)."""
    return scope.get("method") == "POST" and bool(UPLOAD_ROUTE.match(scope.get("path", "")))


class _TooLarge(Exception):
    """The body passed the limit while it was being read."""


class BodyLimit:
    """ASGI middleware: refuse a request body over ``max_bytes`` with 413 (the error names
    ``setting``). Requests for which ``exempt(scope)`` is true pass untouched."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        setting: str = "server.max_json_mb",
        exempt: Callable[[Scope], bool] = is_upload,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.setting = setting
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.exempt(scope):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send)
            return
        received = 0
        started = over = False

        async def counted() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    over = True
                    raise _TooLarge
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if over:  # whatever the app answers to the failed read, the client gets the 413
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        with contextlib.suppress(_TooLarge):  # the app may not catch it; the 413 follows
            await self.app(scope, counted, guarded)
        if over and not started:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            error_body(
                f"the request body is larger than the limit of {self.max_bytes / MiB:.3g} MB",
                "invalid_request_error",
                f"raise {self.setting} in hanlin.toml, or send less in one request",
                "request_too_large",
            )
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


__all__ = ["BodyLimit", "is_upload"]
