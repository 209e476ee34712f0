"""A real local HTTP server that stands in for a paid model provider.

It replays recorded response shapes (:mod:`hanlin.testing.recordings`) and injects the faults
real providers produce: 429 with ``Retry-After``, 5xx, a connection reset mid-stream, a slow
first byte, malformed JSON. Tests script replies per path; with nothing scripted it answers
every chat call with a small OpenAI-shaped completion (the benchmark's steady upstream).

Run it alone for benchmarks: ``python -m hanlin.testing.upstream --port 8901``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import threading
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class Reply:
    """One scripted answer.

    ``json`` → a JSON body; ``sse`` → a ``text/event-stream`` of these event blocks (each one
    ``data: …`` or ``event: …\\ndata: …``); ``raw`` → these exact bytes (malformed bodies).
    ``reset_after`` breaks the connection after that many SSE events; ``first_byte_delay``
    waits before the status line; ``chunk_delay`` waits between events.
    """

    status: int = 200
    json: Any = None
    sse: list[str] | None = None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    first_byte_delay: float = 0.0
    chunk_delay: float = 0.0
    reset_after: int | None = None

    @classmethod
    def chat(cls, content: str, *, prompt_tokens: int = 5, completion_tokens: int = 2) -> Reply:
        """A chat completion answering ``content``, shaped as OpenAI returns one."""
        return cls(
            json={
                "id": "c",
                "object": "chat.completion",
                "created": 1,
                "model": "m",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )


class _Reset(Exception):
    """Raised inside the app to make the server drop the connection mid-body."""


_DEFAULT_TEXT = "Hello! How can I help you today?"
_DEFAULT_PIECES = ["Hello", "!", " How", " can", " I", " help", " you", " today", "?"]


def _default_chat(body: dict[str, Any]) -> Reply:
    model = body.get("model", "fake-model")
    usage = {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29}
    if not body.get("stream"):
        return Reply(
            json={
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": 1_741_569_952,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": _DEFAULT_TEXT},
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            }
        )
    head = '{"id":"chatcmpl-fake","object":"chat.completion.chunk","created":1741569952,"model":'
    head += json.dumps(model) + ',"choices":'
    events = [
        "data: "
        + head
        + '[{"index":0,"delta":{"content":'
        + json.dumps(p)
        + '},"finish_reason":null}]}'
        for p in _DEFAULT_PIECES
    ]
    events.append("data: " + head + '[{"index":0,"delta":{},"finish_reason":"stop"}]}')
    if (body.get("stream_options") or {}).get("include_usage"):
        events.append("data: " + head + "[]," + '"usage":' + json.dumps(usage) + "}")
    events.append("data: [DONE]")
    return Reply(sse=events)


class FakeUpstream:
    """The ASGI app plus a scriptable queue of replies per path, and a log of requests."""

    def __init__(self, responder: Callable[[dict[str, Any]], Reply] | None = None) -> None:
        #: answers chat calls nothing was scripted for (default: one small completion)
        self.responder = responder or _default_chat
        self._queues: dict[str, deque[Reply]] = defaultdict(deque)
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        #: client (host, port) pairs seen: one per TCP connection
        self.connections: set[tuple[str, int]] = set()
        self.record_requests = True
        self._lock = threading.Lock()

    def script(self, path: str, *replies: Reply) -> None:
        """Queue replies for ``path`` (e.g. ``/v1/chat/completions``); each is used once."""
        with self._lock:
            self._queues[path].extend(replies)

    def reset(self) -> None:
        with self._lock:
            self._queues.clear()
            self.requests.clear()
            self.connections.clear()

    def _next(self, path: str, body: Any) -> Reply:
        with self._lock:
            queue = self._queues.get(path)
            if queue:
                return queue.popleft()
        if path.endswith("/chat/completions") and isinstance(body, dict):
            return self.responder(body)
        return Reply(status=404, json={"error": {"message": f"no reply scripted for {path}"}})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        raw = b"".join(chunks)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        path = scope["path"]
        if self.record_requests:
            client = scope.get("client")
            if client:
                self.connections.add((str(client[0]), int(client[1])))
            headers = {k.decode(): v.decode() for k, v in scope["headers"]}
            self.requests.append((path, headers, body))
        reply = self._next(path, body)
        if reply.first_byte_delay:
            await asyncio.sleep(reply.first_byte_delay)
        if reply.sse is not None:
            await self._send_sse(reply, send)
            return
        if reply.raw is not None:
            payload, ctype = reply.raw, "application/json"
        else:
            payload, ctype = json.dumps(reply.json, ensure_ascii=False).encode(), "application/json"
        headers_out = [
            (b"content-type", ctype.encode()),
            (b"content-length", str(len(payload)).encode()),
        ]
        headers_out += [(k.lower().encode(), v.encode()) for k, v in reply.headers.items()]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers_out})
        await send({"type": "http.response.body", "body": payload})

    async def _send_sse(self, reply: Reply, send: Send) -> None:
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
        headers += [(k.lower().encode(), v.encode()) for k, v in reply.headers.items()]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        for i, event in enumerate(reply.sse or []):
            if reply.reset_after is not None and i >= reply.reset_after:
                raise _Reset("connection reset by the fake upstream")
            if reply.chunk_delay:
                await asyncio.sleep(reply.chunk_delay)
            await send(
                {"type": "http.response.body", "body": (event + "\n\n").encode(), "more_body": True}
            )
        await send({"type": "http.response.body", "body": b""})


class UpstreamServer:
    """Runs a :class:`FakeUpstream` with uvicorn on 127.0.0.1 in a background thread."""

    def __init__(self, app: FakeUpstream | None = None, port: int = 0) -> None:
        self.app = app or FakeUpstream()
        self._port = port
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self.port = 0

    @property
    def url(self) -> str:
        """The base URL, ending in ``/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> UpstreamServer:
        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="critical", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True, name="fake-upstream"
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the fake upstream did not start within 10 s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> UpstreamServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    """Serve the fake upstream in the foreground (for benchmarks)."""
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8901)
    args = parser.parse_args()
    app = FakeUpstream()
    app.record_requests = False
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
