"""The process's tracing: an OpenTelemetry SDK ``TracerProvider`` whose finished spans go, through
bounded queues and one writer thread each, to Hanlin's trace store and (when
``tracing.otlp_endpoint`` is set) to any OTLP/HTTP collector.

Nothing here may slow or fail a request: ending a span only puts it on a queue (a full queue
drops the span and counts it); converting, masking and writing happen on the writer threads; a
store or collector that fails is reported once in the log, with what to do, and counted
(:func:`counters`). :func:`configure` is called by every entry point (server, CLI, gateway) and
is cheap when nothing changed; the provider is Hanlin's own, not the global one, so an
application that embeds Hanlin keeps its own OpenTelemetry setup.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

from hanlin.tracing.records import to_record

if TYPE_CHECKING:
    from opentelemetry.context import Context

    from hanlin.config import Settings
    from hanlin.tracing.base import TraceStore

log = logging.getLogger("hanlin.tracing")

_BATCH = 512
#: how long the writer waits for more spans before writing a batch, seconds
_LINGER = 0.2
#: how often the store's retention runs, seconds
_PRUNE_EVERY = 600.0
#: the most traces one retention step deletes (one short transaction after a batch)
_PRUNE_SLICE = 100
#: the most spans added to the text index after a batch that did not fill up
_INDEX_SLICE = 2000


@dataclass
class Counters:
    """Spans dropped because a queue was full, and spans lost to a failing sink."""

    dropped: int = 0
    failed: int = 0
    written: int = 0
    last_error: str | None = None
    reported: set[str] = field(default_factory=set)


class QueueProcessor(SpanProcessor):
    """Finished spans onto a bounded queue; a daemon thread hands batches to ``sink``."""

    def __init__(self, name: str, sink: Callable[[list[ReadableSpan]], None], size: int) -> None:
        self.name = name
        self.sink = sink
        self.counters = Counters()
        self._queue: queue.Queue[ReadableSpan | None] = queue.Queue(maxsize=size)
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"traces-{name}")
        self._thread.start()

    def on_start(self, span: Any, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        try:
            self._idle.clear()
            self._queue.put_nowait(span)
        except queue.Full:
            self.counters.dropped += 1
            self._report("full", f"the {self.name} queue is full: spans are being dropped")

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            # gather for a moment: one transaction per batch, not per span, and the writer
            # wakes a few times a second instead of once per request
            batch = [first]
            until = time.monotonic() + _LINGER
            while len(batch) < _BATCH:
                try:
                    nxt = self._queue.get(timeout=max(0.0, until - time.monotonic()))
                except queue.Empty:
                    break
                if nxt is None:
                    self._write(batch)
                    return
                batch.append(nxt)
            self._write(batch)
            if self._queue.empty():
                self._idle.set()

    def _write(self, batch: list[ReadableSpan]) -> None:
        try:
            self.sink(batch)
            self.counters.written += len(batch)
        except Exception as exc:  # a failing sink must never reach a request
            self.counters.failed += len(batch)
            self.counters.last_error = f"{type(exc).__name__}: {exc}"
            self._report(type(exc).__name__, f"traces not written to the {self.name}: {exc}")

    def _report(self, kind: str, message: str) -> None:
        if kind in self.counters.reported:
            return
        self.counters.reported.add(kind)
        hint = (
            "check tracing.otlp_endpoint and that the collector is up"
            if self.name == "collector"
            else "requests are unaffected; `hanlin traces status` shows the counts — move "
            "or delete a corrupt traces.sqlite, or set tracing.enabled = false"
        )
        log.warning("%s (%s)", message, hint)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._idle.wait(timeout_millis / 1000)

    def shutdown(self) -> None:
        self.force_flush(5_000)
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)


class _StoreSink:
    """Writes each batch, and runs retention a slice at a time: once due (every
    :data:`_PRUNE_EVERY` s), batches are followed by deleting at most :data:`_PRUNE_SLICE` of
    the oldest expired traces (after each batch when the writer keeps up, once a second when it
    is busy) until none is left, so a large backlog (a first start over an
    old store, a shorter retention) never holds the writer for minutes while the queue fills.
    The text index is filled the same way, and only when the writer has caught up."""

    def __init__(self, store: TraceStore, retention_days: int, max_spans: int) -> None:
        self.store = store
        self.retention_days = retention_days
        self.max_spans = max_spans
        self._pruned = 0.0
        self._older: int | None = None
        self._pruning = False
        self._sliced = 0.0

    def __call__(self, spans: list[ReadableSpan]) -> None:
        self.store.write([to_record(s) for s in spans])
        if len(spans) < _BATCH:  # the queue was drained: time to index the text written
            self.store.index_text(_INDEX_SLICE)
        now = time.time()
        if now - self._pruned > _PRUNE_EVERY:
            self._pruned = now
            self._pruning = bool(self.retention_days or self.max_spans)
            days = self.retention_days
            self._older = int((now - days * 86400) * 1e9) if days else None
        # a busy writer (full batches) deletes one slice a second, an idle one after each batch
        if self._pruning and (len(spans) < _BATCH or now - self._sliced >= 1.0):
            self._sliced = now
            deleted = self.store.prune(
                older_than_ns=self._older, max_spans=self.max_spans or None, limit=_PRUNE_SLICE
            )
            self._pruning = deleted > 0


def _otlp_sink(endpoint: str, headers: dict[str, str]) -> Callable[[list[ReadableSpan]], None]:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult

    exporter = OTLPSpanExporter(endpoint=endpoint, headers=headers, timeout=5)

    def send(spans: list[ReadableSpan]) -> None:
        if exporter.export(spans) is not SpanExportResult.SUCCESS:
            raise ConnectionError(f"the collector at {endpoint} did not accept the spans")

    return send


@dataclass
class _NextTrace:
    trace_id: int
    used: bool = False


#: the id the next trace started in this context takes (see :func:`begin_trace`)
_next_trace: contextvars.ContextVar[_NextTrace | None] = contextvars.ContextVar(
    "hanlin_next_trace", default=None
)


class _TraceIds(RandomIdGenerator):
    """Random ids, except that the first trace started after :func:`begin_trace` in a context
    (and the tasks and threads it starts) takes the id chosen there."""

    def generate_trace_id(self) -> int:
        chosen = _next_trace.get()
        if chosen is not None and not chosen.used:
            chosen.used = True
            return chosen.trace_id
        return super().generate_trace_id()


def begin_trace() -> str | None:
    """Choose the id of the next trace this context starts, before it starts, and return it
    (32 hex digits), or None while tracing is off. The server sends it with a response
    (``X-Trace-Id``) whose headers leave before its first span opens (a stream), so a client
    can rate that answer. Later traces in the same context get ids of their own."""
    if _state is None:
        return None
    trace_id = RandomIdGenerator().generate_trace_id()
    _next_trace.set(_NextTrace(trace_id))
    return format(trace_id, "032x")


class _Tracing:
    def __init__(self, settings: Settings, target: tuple[Any, ...]) -> None:
        from importlib.metadata import version

        from hanlin.tracing import open_trace_store

        t = settings.tracing
        self.target = target
        self.capture_content = t.capture_content
        self.provider = TracerProvider(
            resource=Resource.create(
                {"service.name": "hanlin", "service.version": version("hanlin")}
            ),
            id_generator=_TraceIds(),
        )
        self.store = open_trace_store(settings)
        self.processors = [
            QueueProcessor(
                "trace store",
                _StoreSink(self.store, t.retention_days, t.max_spans),
                t.queue_size,
            )
        ]
        if t.otlp_endpoint:
            sink = _otlp_sink(t.otlp_endpoint, t.otlp_headers)
            self.processors.append(QueueProcessor("collector", sink, t.queue_size))
        for p in self.processors:
            self.provider.add_span_processor(p)
        self.tracer = self.provider.get_tracer("hanlin")
        _exit_hook()

    def shutdown(self) -> None:
        self.provider.shutdown()
        self.store.close()


_state: _Tracing | None = None
_lock = threading.Lock()
_hooked = False


def _exit_hook() -> None:
    """At exit, write what is queued (a CLI command ends right after its last span)."""
    global _hooked
    if not _hooked:
        _hooked = True
        atexit.register(flush, 5.0)


_NOOP = trace.NoOpTracer()


def configure(settings: Settings) -> None:
    """Trace to the store (and collector) of ``settings``; a no-op when already so."""
    global _state
    t = settings.tracing
    target = (
        str(settings.home),
        settings.database_url,
        t.enabled,
        t.capture_content,
        t.otlp_endpoint,
        tuple(sorted(t.otlp_headers.items())),
        t.queue_size,
    )
    if _state is not None and _state.target == target:
        return
    with _lock:
        if _state is not None and _state.target == target:
            return
        old, _state = _state, (_Tracing(settings, target) if t.enabled else None)
    if old is not None:
        old.shutdown()


def tracer() -> trace.Tracer:
    """Hanlin's tracer (a no-op one while tracing is off or not configured)."""
    state = _state
    return state.tracer if state is not None else _NOOP


def capturing() -> bool:
    """Whether message content and tool arguments are recorded."""
    state = _state
    return state is not None and state.capture_content


def flush(timeout: float = 10.0) -> bool:
    """Wait until every finished span has been handed to its sinks."""
    state = _state
    if state is None:
        return True
    return all(p.force_flush(int(timeout * 1000)) for p in state.processors)


def counters() -> dict[str, Counters]:
    state = _state
    return {p.name: p.counters for p in state.processors} if state is not None else {}


def current_store() -> TraceStore | None:
    state = _state
    return state.store if state is not None else None


def shutdown() -> None:
    global _state
    with _lock:
        old, _state = _state, None
    if old is not None:
        old.shutdown()
