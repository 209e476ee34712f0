"""The PostgreSQL trace store (``database_url`` set): the SQLite store's tables in the shared
database (``trace_spans``, ``traces``, ``trace_days``, ``trace_stats_cache``: migration 30;
``trace_tags`` and the text index: migration 31), so every replica records into and lists the
same traces. Free-text search uses a ``pg_trgm`` GIN index of the attributes where the server
has that extension (migration 31 creates it when it can), and scans where it has not.

A write locks its trace ids (transaction advisory locks, taken in one global order) before it
rebuilds their ``traces`` rows, so replicas writing spans of one trace at once take turns and
none rebuilds a trace from a view that misses another's spans."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

import hanlin.tracing.sql as sql
from hanlin.tracing.base import SpanRecord, StatsRow, TraceQuery, TraceSummary
from hanlin.tracing.sql import DAY_NS, SPAN_COLUMNS, Dialect

if TYPE_CHECKING:
    import psycopg

    from hanlin.db.postgres import Database

#: first key of the advisory locks on trace ids ("tr"), apart from every other lock's
_LOCK_CLASS = 0x7472
_DIALECT = Dialect(
    spans="trace_spans",
    mark="%s",
    like="ILIKE",
    attributes="attributes::text",
    any_of=lambda ids: ("= ANY(%s)", [list(ids)]),
    pairs=lambda pairs: (
        'SELECT s, t COLLATE "C" FROM unnest(%s::bigint[], %s::text[]) AS u(s, t)',
        [[p[0] for p in pairs], [p[1] for p in pairs]],
    ),
    fence=" OFFSET 0",
)
#: a text the index finds in more spans than this is searched by the scan (a page sooner)
_CANDIDATES = 4000


class PostgresTraceStore:
    """Traces in the database of ``url``. Cheap to construct; connects on first use. Safe to
    share between threads and between processes on any machine."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._db: Database | None = None
        self._text_index: bool | None = None

    def _database(self) -> Database:
        if self._db is None:
            from hanlin.db.postgres import database

            self._db = database(self.url)
        return self._db

    @contextmanager
    def _session(self, write: bool) -> Iterator[psycopg.Connection[Any]]:
        """One transaction (committed at the end, rolled back on an error)."""
        with self._database().connection() as conn:
            if not write:
                conn.execute("SET TRANSACTION READ ONLY")
            yield conn

    def close(self) -> None:
        """Nothing to close: the process's pool outlives one store (closed at exit)."""

    # --- writes --------------------------------------------------------------------------

    def write(self, spans: list[SpanRecord]) -> None:
        if not spans:
            return
        rows = [_storable(sql.span_values(s)) for s in spans]
        trace_ids = sorted({s.trace_id for s in spans})
        keys = sorted({zlib.crc32(t.encode()) - 2**31 for t in trace_ids})
        with self._session(write=True) as conn:
            # unnest yields the sorted array in order: every writer locks in the same order
            conn.execute(
                "SELECT pg_advisory_xact_lock(%s, k) FROM unnest(%s::int[]) AS k",
                (_LOCK_CLASS, keys),
            )
            # COPY into a session's scratch table, then one INSERT that skips known span ids:
            # about twice the rate of one INSERT per span
            conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS trace_spans_in (LIKE trace_spans) "
                "ON COMMIT DELETE ROWS"
            )
            with (
                conn.cursor() as cur,
                cur.copy(f"COPY trace_spans_in ({SPAN_COLUMNS}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
            conn.execute(
                f"INSERT INTO trace_spans ({SPAN_COLUMNS}) SELECT {SPAN_COLUMNS} "
                "FROM trace_spans_in ON CONFLICT (span_id) DO NOTHING"
            )
            sql.refresh(conn, _DIALECT, trace_ids, {s.start_ns // DAY_NS for s in spans})

    def rate(self, trace_id: str, rating: Literal[1, -1] | None, comment: str | None) -> bool:
        with self._session(write=True) as conn:
            return sql.rate(conn, _DIALECT, trace_id, rating, _clean(comment))

    def prune(
        self,
        older_than_ns: int | None = None,
        max_spans: int | None = None,
        *,
        limit: int | None = None,
    ) -> int:
        with self._session(write=True) as conn:
            return sql.prune(conn, _DIALECT, older_than_ns, max_spans, limit)

    def index_text(self, limit: int = 2000) -> int:
        """Nothing to do: PostgreSQL keeps its text index itself."""
        return 0

    # --- reads ---------------------------------------------------------------------------

    def list_traces(self, query: TraceQuery) -> list[TraceSummary]:
        with self._session(write=False) as conn:
            text, args = sql.list_sql(query, _DIALECT, lambda t: self._search(conn, t))
            rows = conn.execute(text, args).fetchall()
        return [sql.summary_of(r) for r in rows]

    def _search(self, conn: psycopg.Connection[Any], text: str) -> tuple[str, list[Any]]:
        """The text condition: through the ``pg_trgm`` index where there is one and the text
        is rare enough (:data:`_CANDIDATES`), else the newest-first scan."""
        if self._text_index is None:
            found = conn.execute("SELECT 1 FROM pg_indexes WHERE indexname = 'trace_spans_text'")
            self._text_index = found.fetchone() is not None
        pattern = f"%{sql.escape_like(sql.in_json(text))}%"
        if self._text_index and len(text) >= 3:
            row = conn.execute(
                "SELECT count(*) FROM (SELECT 1 FROM trace_spans "
                "WHERE attributes::text ILIKE %s LIMIT %s) c",
                (pattern, _CANDIDATES),
            ).fetchone()
            if row is not None and row[0] < _CANDIDATES:
                return (
                    "(t.name ILIKE %s OR t.trace_id IN (SELECT s.trace_id FROM trace_spans s "
                    "WHERE s.attributes::text ILIKE %s))",
                    [f"%{sql.escape_like(text)}%", pattern],
                )
        return sql.scan_search(_DIALECT, text)

    def get_trace(self, trace_id: str) -> list[SpanRecord]:
        with self._session(write=False) as conn:
            rows = conn.execute(
                f"SELECT {SPAN_COLUMNS} FROM trace_spans WHERE trace_id = %s "
                "ORDER BY start_ns, span_id",
                (trace_id,),
            ).fetchall()
        return [sql.span_of(r, r[-1]) for r in rows]

    def stats(
        self,
        by: Literal["model", "kb", "key_id", "none"],
        since_ns: int | None = None,
        spans: Literal["root", "llm"] = "llm",
    ) -> list[StatsRow]:
        source, column = sql.stats_source(spans, by, "trace_spans")
        if column == "NULL":
            column = "NULL::text"
        return sql.cached_stats(
            self._session, _DIALECT, f"{spans}-calls:{by}", since_ns, _compute(source, column)
        )

    def count(self) -> int:
        with self._session(write=False) as conn:
            row = conn.execute("SELECT count(*) FROM trace_spans").fetchone()
        return int(row[0]) if row else 0


def _compute(source: str, column: str) -> sql.Compute:
    """Stats of the rows of ``source`` started in [low, high), percentiles included."""
    duration = "WITHIN GROUP (ORDER BY end_ns - start_ns)"

    def compute(conn: psycopg.Connection[Any], low: int, high: int) -> list[StatsRow]:
        rows = conn.execute(
            f"SELECT start_ns / {DAY_NS}, {column}, count(*), "
            "count(*) FILTER (WHERE status = 'error'), sum(input_tokens)::bigint, "
            "sum(output_tokens)::bigint, sum(cost_usd), sum(cost_cny), "
            f"percentile_cont(0.5) {duration}, percentile_cont(0.95) {duration} "
            f"FROM {source} AND start_ns >= %s AND start_ns < %s GROUP BY 1, 2",
            (low, high),
        ).fetchall()
        return [sql.stats_row(*r) for r in rows]

    return compute


def _clean(value: Any) -> Any:
    """Text without NUL characters, which PostgreSQL cannot store (U+FFFD in their place)."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _storable(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A row of :func:`~hanlin.tracing.sql.span_values` that PostgreSQL accepts."""
    *columns, attributes = row
    if "\\u0000" in attributes:
        attributes = json.dumps(_clean(json.loads(attributes)), ensure_ascii=False)
    return (*(_clean(c) for c in columns), attributes)
