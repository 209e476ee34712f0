"""The SQLite trace store: ``<app dir>/traces.sqlite`` in WAL mode. ``spans`` holds one row
per span; ``traces`` one row per trace (root name, time span, status, totals, rating), rebuilt
from its spans in the transaction of every write, so the list reads one indexed table. The
SQL itself is shared with the PostgreSQL store (:mod:`hanlin.tracing.sql`)."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import hanlin.tracing.sql as sql
from hanlin.errors import DatabaseUnavailableError, StoreCorruptError, StoreLockedError
from hanlin.sqlite_migrations import apply_migrations
from hanlin.tracing.base import SpanRecord, StatsRow, TraceQuery, TraceSummary
from hanlin.tracing.sql import DAY_NS, SPAN_COLUMNS, Dialect

if TYPE_CHECKING:
    from hanlin.config import Settings

FILENAME = "traces.sqlite"
_DIALECT = Dialect(
    spans="spans",
    mark="?",
    like="LIKE",  # case-insensitive for ASCII
    attributes="attributes",
    any_of=lambda ids: (f"IN ({', '.join('?' * len(ids))})", list(ids)),
)

_INSERT_BATCH = (
    f"INSERT OR IGNORE INTO spans ({SPAN_COLUMNS}) SELECT "
    + ", ".join(f"json_extract(value, '$[{i}]')" for i in range(SPAN_COLUMNS.count(",") + 1))
    + " FROM json_each(?)"
)


def _no_nul(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(v.replace("\x00", "\ufffd") if isinstance(v, str) else v for v in row)


MIGRATIONS: list[tuple[str, list[str]]] = [
    (
        "0001_initial",
        [
            """CREATE TABLE spans (
                span_id TEXT PRIMARY KEY, trace_id TEXT NOT NULL, parent_id TEXT,
                name TEXT NOT NULL, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,
                status TEXT NOT NULL, error TEXT, operation TEXT, model TEXT, provider TEXT,
                kb TEXT, key_id TEXT, input_tokens INTEGER NOT NULL,
                output_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL,
                cost_usd REAL NOT NULL, cost_cny REAL NOT NULL, attributes TEXT NOT NULL
            )""",
            "CREATE INDEX spans_trace ON spans(trace_id, start_ns)",
            "CREATE INDEX spans_start ON spans(start_ns)",
            # (value, trace) serves both "this trace has the value?" and "traces with it"
            "CREATE INDEX spans_model ON spans(model, trace_id) WHERE model IS NOT NULL",
            "CREATE INDEX spans_kb ON spans(kb, trace_id) WHERE kb IS NOT NULL",
            "CREATE INDEX spans_key ON spans(key_id, trace_id) WHERE key_id IS NOT NULL",
            """CREATE TABLE traces (
                trace_id TEXT PRIMARY KEY, name TEXT NOT NULL, start_ns INTEGER NOT NULL,
                end_ns INTEGER NOT NULL, status TEXT NOT NULL, spans INTEGER NOT NULL,
                model TEXT, kb TEXT, key_id TEXT, input_tokens INTEGER NOT NULL,
                output_tokens INTEGER NOT NULL, cost_usd REAL NOT NULL, cost_cny REAL NOT NULL,
                rating INTEGER, comment TEXT
            )""",
            "CREATE INDEX traces_start ON traces(start_ns, trace_id)",
            "CREATE INDEX traces_status ON traces(status, start_ns, trace_id)",
            "CREATE INDEX traces_rating ON traces(rating, start_ns, trace_id) "
            "WHERE rating IS NOT NULL",
            # the dashboard's per-day cache (hanlin.tracing.sql.cached_stats)
            "CREATE TABLE trace_days (day INTEGER PRIMARY KEY, version INTEGER NOT NULL)",
            """CREATE TABLE trace_stats_cache (
                kind TEXT NOT NULL, day INTEGER NOT NULL, version INTEGER NOT NULL,
                rows TEXT NOT NULL, PRIMARY KEY (kind, day)
            )""",
        ],
    ),
]

# SQLite's primary result codes (``sqlite3.Error.sqlite_errorcode & 0xFF``)
_BUSY, _LOCKED, _CORRUPT, _NOTADB = 5, 6, 11, 26


class SqliteTraceStore:
    """Traces in one SQLite file. Cheap to construct; the file opens on first use. Safe to
    share between threads (one connection behind a lock) and between processes (WAL, a busy
    timeout, ``BEGIN IMMEDIATE`` for every change)."""

    def __init__(self, path: Path, *, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()

    @classmethod
    def from_settings(cls, settings: Settings) -> SqliteTraceStore:
        # a trace write that waits on another process longer than this is better dropped
        return cls(settings.home / FILENAME, busy_timeout=5.0)

    # --- plumbing ------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            try:
                conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
                conn.execute("PRAGMA journal_mode=WAL")
                # traces are diagnostics: a power cut may lose the last batch, never the file
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA cache_size=-32768")  # 32 MiB: index inserts stay in memory
                apply_migrations(conn, MIGRATIONS)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    @contextmanager
    def _session(self, write: bool) -> Iterator[sqlite3.Connection]:
        """One transaction under the lock (``BEGIN IMMEDIATE`` to write); SQLite's errors
        become Hanlin's, and a file found damaged is closed so the next call opens it anew."""
        with self._lock:
            try:
                conn = self._connection()
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield conn
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                error = self._translate(exc)
                if isinstance(error, StoreCorruptError):
                    self.close()
                raise error from exc

    def _translate(self, exc: sqlite3.DatabaseError) -> Exception:
        code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
        if code in (_BUSY, _LOCKED):
            return StoreLockedError(
                f"the trace database {self.path} stayed locked by another process for "
                f"{self.busy_timeout:g} s ({exc})",
                hint="another Hanlin process is writing traces; retry, or stop the process "
                "that holds the file",
            )
        if code in (_CORRUPT, _NOTADB):
            return StoreCorruptError(
                f"the trace database {self.path} is damaged ({exc})",
                hint=f"move {self.path.name} (and any -wal/-shm files beside it) aside; Hanlin "
                "starts a new, empty one — only the recorded traces are lost",
            )
        return DatabaseUnavailableError(
            f"cannot use the trace database {self.path}: {exc}",
            hint="check that the disk has space and that the file and its folder are "
            "writable by this user",
        )

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # --- writes --------------------------------------------------------------------------

    def write(self, spans: list[SpanRecord]) -> None:
        if not spans:
            return
        # the whole batch as one JSON array, inserted by one statement: ``executemany`` would
        # step once per row, giving up and re-taking the GIL each time, and a busy request
        # thread makes every re-take wait (the writer then falls behind at a few thousand/s)
        rows = [sql.span_values(s) for s in spans]
        batch = json.dumps(rows, ensure_ascii=False)
        if "\\u0000" in batch:  # SQLite's JSON functions end text at NUL: replace it
            batch = json.dumps([_no_nul(r) for r in rows], ensure_ascii=False)
        with self._session(write=True) as conn:
            conn.execute(_INSERT_BATCH, (batch,))
            trace_ids = sorted({s.trace_id for s in spans})
            sql.refresh(conn, _DIALECT, trace_ids, {s.start_ns // DAY_NS for s in spans})

    def rate(self, trace_id: str, rating: Literal[1, -1] | None, comment: str | None) -> bool:
        with self._session(write=True) as conn:
            return sql.rate(conn, _DIALECT, trace_id, rating, comment)

    def prune(self, older_than_ns: int | None = None, max_spans: int | None = None) -> int:
        with self._session(write=True) as conn:
            return sql.prune(conn, _DIALECT, older_than_ns, max_spans)

    # --- reads ---------------------------------------------------------------------------

    def list_traces(self, query: TraceQuery) -> list[TraceSummary]:
        text, args = sql.list_sql(query, _DIALECT)
        with self._session(write=False) as conn:
            rows = conn.execute(text, args).fetchall()
        return [sql.summary_of(r) for r in rows]

    def get_trace(self, trace_id: str) -> list[SpanRecord]:
        with self._session(write=False) as conn:
            rows = conn.execute(
                f"SELECT {SPAN_COLUMNS} FROM spans WHERE trace_id = ? ORDER BY start_ns, span_id",
                (trace_id,),
            ).fetchall()
        return [sql.span_of(r, json.loads(r[-1])) for r in rows]

    def stats(
        self,
        by: Literal["model", "kb", "key_id", "none"],
        since_ns: int | None = None,
        spans: Literal["root", "llm"] = "llm",
    ) -> list[StatsRow]:
        source, column = sql.stats_source(spans, by, "spans")
        return sql.cached_stats(
            self._session, _DIALECT, f"{spans}-calls:{by}", since_ns, _compute(source, column)
        )

    def count(self) -> int:
        with self._session(write=False) as conn:
            return int(conn.execute("SELECT count(*) FROM spans").fetchone()[0])


def _compute(source: str, column: str) -> sql.Compute:
    """Stats of the rows of ``source`` started in [low, high): sums in SQL, percentiles in
    Python over the durations, fetched sorted in the groups' order and cut by their counts."""

    def compute(conn: sqlite3.Connection, low: int, high: int) -> list[StatsRow]:
        where = f"FROM {source} AND start_ns >= ? AND start_ns < ?"
        key = f"start_ns / {DAY_NS}, {column}"
        sums = conn.execute(
            f"SELECT {key}, count(*), count(*) FILTER (WHERE status = 'error'), "
            f"sum(input_tokens), sum(output_tokens), sum(cost_usd), sum(cost_cny) {where} "
            "GROUP BY 1, 2 ORDER BY 1, 2",
            (low, high),
        ).fetchall()
        ordered = conn.execute(f"SELECT end_ns - start_ns {where} ORDER BY {key}, 1", (low, high))
        durations = [r[0] for r in ordered.fetchall()]
        out, at = [], 0
        for day, group, n, errors, tin, tout, usd, cny in sums:
            mine = durations[at : at + n]
            at += n
            p50, p95 = sql.percentile(mine, 0.5), sql.percentile(mine, 0.95)
            out.append(sql.stats_row(day, group, n, errors, tin, tout, usd, cny, p50, p95))
        return out

    return compute
