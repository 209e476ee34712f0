"""What a stored span is, and the protocol every trace store implements (SQLite in the app
directory by default, PostgreSQL when ``database_url`` is set), so the tracer, the CLI, the
API and the web UI never depend on one backend.

Spans come from the OpenTelemetry SDK (:mod:`hanlin.tracing.setup`); a :class:`SpanRecord` is
the flat, storable form of one finished span. The columns pulled out of the attributes
(model, provider, tokens, cost, knowledge base, API key) are the ones the list filters and the
dashboard group by; every attribute stays in ``attributes`` as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

#: the OpenTelemetry GenAI semantic conventions version the attribute names follow
GENAI_SEMCONV_VERSION = "1.37.0"


@dataclass
class SpanRecord:
    """One finished span. Ids are lower-case hex (trace 32 digits, span 16), times Unix ns."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    start_ns: int
    end_ns: int
    status: Literal["ok", "error", "unset"] = "unset"
    error: str | None = None
    #: gen_ai.operation.name (chat, embeddings, …) or Hanlin's own (retrieve, tool, …)
    operation: str | None = None
    model: str | None = None
    provider: str | None = None
    kb: str | None = None
    #: the caller's API key id ("" or None on a keyless local server)
    key_id: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float = 0.0
    cost_cny: float = 0.0
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


@dataclass
class TraceSummary:
    """One trace as the list shows it: its root span plus totals over all its spans."""

    trace_id: str
    name: str
    start_ns: int
    duration_ms: float
    status: Literal["ok", "error", "unset"]
    spans: int
    model: str | None
    kb: str | None
    key_id: str | None
    input_tokens: int
    output_tokens: int
    cost_usd: float
    cost_cny: float
    #: +1 / -1 / None, from :meth:`TraceStore.rate`
    rating: int | None = None
    comment: str | None = None


@dataclass
class TraceQuery:
    """Filters of :meth:`TraceStore.list_traces` (all optional, combined with AND).

    ``model``/``kb``/``key_id`` match a trace when any of its spans has that value;
    ``status`` is the trace's (error when any span failed); ``text`` is a case-insensitive
    substring of the root span's name or of any span's attributes JSON."""

    since_ns: int | None = None
    until_ns: int | None = None
    model: str | None = None
    kb: str | None = None
    key_id: str | None = None
    status: Literal["ok", "error"] | None = None
    rating: Literal[1, -1] | None = None
    text: str | None = None
    limit: int = 50
    #: opaque cursor from the previous page (the last trace's start and id); None = newest
    before: tuple[int, str] | None = None


@dataclass
class StatsRow:
    """One group of :meth:`TraceStore.stats`: a day (UTC, ``YYYY-MM-DD``) and a key value."""

    day: str
    group: str | None
    requests: int
    errors: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    cost_cny: float
    p50_ms: float
    p95_ms: float


@runtime_checkable
class TraceStore(Protocol):
    """Where finished spans are kept. Every method is safe to call from any thread."""

    def write(self, spans: list[SpanRecord]) -> None:
        """Store spans (idempotent: a span id written twice is kept once)."""

    def list_traces(self, query: TraceQuery) -> list[TraceSummary]:
        """Traces matching ``query``, newest first."""

    def get_trace(self, trace_id: str) -> list[SpanRecord]:
        """Every span of one trace ordered by start time ([] when unknown)."""

    def rate(self, trace_id: str, rating: Literal[1, -1] | None, comment: str | None) -> bool:
        """Feedback on a trace (None clears the rating); False when the trace is unknown."""

    def stats(
        self,
        by: Literal["model", "kb", "key_id", "none"],
        since_ns: int | None = None,
        spans: Literal["root", "llm"] = "llm",
    ) -> list[StatsRow]:
        """Per UTC day and group: request/error counts, tokens, cost and latency percentiles.
        ``spans="llm"`` counts model calls (chat, embeddings and rerank spans; not the answers
        and agent runs that name their model too), ``"root"`` whole traces."""

    def prune(
        self,
        older_than_ns: int | None = None,
        max_spans: int | None = None,
        *,
        limit: int | None = None,
    ) -> int:
        """Delete whole traces older than ``older_than_ns`` and then the oldest traces past
        ``max_spans`` spans in total, at most the ``limit`` oldest traces per call (so one
        call is one short transaction; call again until it returns 0); returns the spans
        deleted."""

    def index_text(self, limit: int = 2000) -> int:
        """Background upkeep: add up to ``limit`` recently written spans to the free-text
        index where it is built after the writes; returns how many (0: nothing left)."""

    def count(self) -> int:
        """Spans stored."""

    def close(self) -> None: ...
