"""Traces of what Hanlin did — model calls, retrievals, tool calls — kept for the trace list,
the dashboard and feedback: the types and protocol in ``base.py``, the SQLite store (the app
directory's ``traces.sqlite``) in ``sqlite.py``, the PostgreSQL one (``database_url`` set,
shared by every replica) in ``postgres.py``. :func:`open_trace_store` is the one way surfaces
open the store."""

from __future__ import annotations

from hanlin.config import Settings
from hanlin.tracing.base import (
    GENAI_SEMCONV_VERSION,
    SpanRecord,
    StatsRow,
    TraceQuery,
    TraceStore,
    TraceSummary,
)
from hanlin.tracing.sqlite import SqliteTraceStore

__all__ = [
    "GENAI_SEMCONV_VERSION",
    "SpanRecord",
    "SqliteTraceStore",
    "StatsRow",
    "TraceQuery",
    "TraceStore",
    "TraceSummary",
    "open_trace_store",
]


def open_trace_store(settings: Settings) -> TraceStore:
    """The trace store of these settings: the app directory's SQLite file, or the database of
    ``database_url`` (cheap: opens on first use)."""
    if settings.database_url:
        from hanlin.tracing.postgres import PostgresTraceStore

        return PostgresTraceStore(settings.database_url)
    return SqliteTraceStore.from_settings(settings)
