"""A local HTTP server on 127.0.0.1 standing in for the web search APIs and the result pages.

Tests script replies per path (:class:`Canned`: status, JSON or raw body, headers, a delay for
timeouts) and read back what each client sent (:class:`Seen`: method, path, query string,
headers, JSON body). Replies come from :mod:`hanlin.testing.search_recordings`.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Canned:
    """One scripted reply; ``body`` is JSON-encoded unless it is bytes."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    delay: float = 0.0


@dataclass
class Seen:
    """One request as the server received it (header names lower case)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


class FakeSearchServer:
    """Replies scripted per path, used once each; unscripted paths answer 404."""

    def __init__(self) -> None:
        self.replies: dict[str, deque[Canned]] = defaultdict(deque)
        self.seen: list[Seen] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                owner.seen.append(
                    Seen(
                        self.command,
                        parts.path,
                        dict(parse_qsl(parts.query)),
                        {k.lower(): v for k, v in self.headers.items()},
                        json.loads(raw) if raw else None,
                    )
                )
                queue = owner.replies.get(parts.path)
                reply = queue.popleft() if queue else Canned(404, {"error": "not scripted"})
                if reply.delay:
                    time.sleep(reply.delay)
                body = reply.body
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("content-type", reply.content_type)
                    self.send_header("content-length", str(len(data)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            do_GET = _serve
            do_POST = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def script(self, path: str, *replies: Canned) -> None:
        self.replies[path].extend(replies)

    def reset(self) -> None:
        self.replies.clear()
        self.seen.clear()

    def start(self) -> FakeSearchServer:
        threading.Thread(target=self.httpd.serve_forever, daemon=True, name="fake-search").start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> FakeSearchServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["Canned", "FakeSearchServer", "Seen"]
