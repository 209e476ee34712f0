"""Fixtures of the workflow tests: a local HTTP server that counts requests per
Idempotency-Key (standing in for an API with side effects), and an engine whose HTTP nodes may
reach it."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from hanlin.config import load_settings
from hanlin.flows import FlowEngine


class CountingServer:
    """Answers every request with ``{"n": <requests so far>, "echo": <body>}`` after
    ``delay`` seconds, counting requests per Idempotency-Key; ``fail_first`` requests
    answer 500."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.fail_first = 0
        self.keys: Counter[str] = Counter()
        self.total = 0
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                size = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(size).decode() if size else ""
                with owner.lock:
                    owner.total += 1
                    owner.keys[self.headers.get("idempotency-key", "")] += 1
                    n, failing = owner.total, owner.total <= owner.fail_first
                time.sleep(owner.delay)
                data = json.dumps({"n": n, "echo": body}).encode()
                self.send_response(500 if failing else 200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> CountingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def counting() -> Iterator[CountingServer]:
    with CountingServer() as server:
        yield server


@pytest.fixture()
def engine(counting: CountingServer) -> Iterator[FlowEngine]:
    host = counting.url.removeprefix("http://")
    settings = load_settings(workflows={"allowed_hosts": [host]})
    eng = FlowEngine(settings)
    yield eng
    eng.close()
