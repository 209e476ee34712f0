"""The tracer's queues and the OTLP export: spans reach an OTLP/HTTP receiver as protobuf with
GenAI attributes and parent links; a collector that is down costs nothing but counted spans; a
full queue drops and counts instead of blocking."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from hanlin.config import load_settings
from hanlin.tracing import setup, spans


class _Receiver(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint (``POST /v1/traces``, protobuf body) that keeps what it got."""

    received: ClassVar[list[ExportTraceServiceRequest]] = []

    def do_POST(self) -> None:  # http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        req = ExportTraceServiceRequest()
        req.ParseFromString(body)
        type(self).received.append(req)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    _Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
    server.shutdown()
    setup.shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_spans_reach_an_otlp_receiver_with_genai_attributes(
    hanlin_home: Path, receiver: str
) -> None:
    setup.configure(load_settings(tracing={"otlp_endpoint": receiver}))
    model = {"gen_ai.request.model": "fake/m"}
    with (
        spans.span("answer docs", operation="rag", kb="docs"),
        spans.span("chat fake/m", operation="chat", attrs=model),
    ):
        pass
    assert setup.flush(20)
    got = [
        s
        for req in _Receiver.received
        for rs in req.resource_spans
        for ss in rs.scope_spans
        for s in ss.spans
    ]
    by_name = {s.name: s for s in got}
    assert set(by_name) == {"answer docs", "chat fake/m"}
    assert by_name["chat fake/m"].parent_span_id == by_name["answer docs"].span_id
    attrs = {a.key: a.value.string_value for a in by_name["chat fake/m"].attributes}
    assert attrs["gen_ai.operation.name"] == "chat" and attrs["gen_ai.request.model"] == "fake/m"
    service = {
        a.key: a.value.string_value
        for a in _Receiver.received[0].resource_spans[0].resource.attributes
    }
    assert service["service.name"] == "hanlin"
    # the same spans are in Hanlin's own store
    store = setup.current_store()
    assert store is not None and store.count() == 2


def test_a_collector_that_is_down_costs_only_counted_spans(hanlin_home: Path) -> None:
    down = f"http://127.0.0.1:{_free_port()}/v1/traces"
    setup.configure(load_settings(tracing={"otlp_endpoint": down}))
    try:
        t0 = time.perf_counter()
        for _ in range(50):
            with spans.span("search docs", operation="retrieve"):
                pass
        assert time.perf_counter() - t0 < 1.0  # nothing waits for the collector
        assert setup.flush(60)
        counts = setup.counters()
        assert counts["collector"].failed == 50 and counts["collector"].written == 0
        assert counts["trace store"].written == 50  # the local store is unaffected
    finally:
        setup.shutdown()


def test_a_full_queue_drops_and_counts_instead_of_blocking(hanlin_home: Path) -> None:
    settings = load_settings(tracing={"queue_size": 100})
    setup.configure(settings)
    try:
        with spans.span("first"):
            pass
        assert setup.flush(10)
        locker = sqlite3.connect(settings.home / "traces.sqlite", timeout=0)
        locker.execute("BEGIN EXCLUSIVE")  # the writer now waits on every batch
        try:
            t0 = time.perf_counter()
            for _ in range(2000):
                with spans.span("many"):
                    pass
            elapsed = time.perf_counter() - t0
        finally:
            locker.rollback()
            locker.close()
        assert elapsed < 2.0
        assert setup.counters()["trace store"].dropped >= 1000
    finally:
        setup.shutdown()
