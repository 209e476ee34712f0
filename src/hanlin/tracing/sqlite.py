"""The SQLite trace store: ``<app dir>/traces.sqlite`` in WAL mode. ``spans`` holds one row
per span; ``traces`` one row per trace (root name, time span, status, totals, rating), rebuilt
from its spans in the transaction of every write, so the list reads one indexed table. The
SQL itself is shared with the PostgreSQL store (:mod:`hanlin.tracing.sql`).

Free-text search reads ``spans_text``, an FTS5 trigram index of the spans' attributes (external
content: the text stays in ``spans``), where this SQLite has the trigram tokenizer (3.34+). The
index narrows a search to the spans holding every three characters of the text; ``LIKE`` on
those spans decides, so the results are those of a scan. It is filled when the writer has
caught up (:meth:`SqliteTraceStore.index_text`), never inside a write: tokenizing a span's
text costs as much as storing it, and a writer that falls behind drops spans. Spans not yet
indexed are searched by a scan of just those rows. (A manual ``VACUUM`` may renumber the
spans: then run ``INSERT INTO spans_text(spans_text) VALUES ('delete-all')`` and
``UPDATE spans_text_upto SET upto = 0``, and the writer indexes them again.)"""

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
    pairs=lambda pairs: (
        "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?)",
        [json.dumps(pairs)],
    ),
)
#: a text whose three-character pieces are in more spans than this is searched by the scan,
#: which fills a page of such a common text sooner than checking every candidate
_CANDIDATES = 4000
#: the most pieces of a long text the index is asked for (any of them narrow the search)
_PIECES = 24

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
    (
        # the filters' values per trace, keyed by the trace's start (hanlin.tracing.sql)
        "0002_trace_tags",
        [
            """CREATE TABLE trace_tags (
                start_ns INTEGER NOT NULL, trace_id TEXT NOT NULL, kind TEXT NOT NULL,
                value TEXT NOT NULL, PRIMARY KEY (start_ns, trace_id, kind, value)
            ) WITHOUT ROWID""",
            "INSERT INTO trace_tags "
            + " UNION ".join(
                f"SELECT t.start_ns, t.trace_id, '{c}', s.{c} FROM spans s "
                f"JOIN traces t ON t.trace_id = s.trace_id WHERE s.{c} IS NOT NULL"
                for c in sql.TAGS
            ),
            "DROP INDEX spans_model",
            "DROP INDEX spans_kb",
            "DROP INDEX spans_key",
        ],
    ),
]
#: the text index, where this SQLite has the trigram tokenizer (applied when it does). It is
#: filled after the writes, not in them (:meth:`SqliteTraceStore.index_text`): spans up to
#: ``spans_text_upto.upto`` (a rowid) are in it, the newer ones are searched by a scan
_TEXT_INDEX = (
    "0003_spans_text",
    [
        "CREATE VIRTUAL TABLE spans_text USING fts5(attributes, content='spans', "
        "content_rowid='rowid', tokenize='trigram', detail='none', columnsize=0)",
        "CREATE TABLE spans_text_upto (upto INTEGER NOT NULL)",
        "INSERT INTO spans_text_upto VALUES (0)",
        "CREATE TRIGGER spans_text_delete AFTER DELETE ON spans "
        "WHEN old.rowid <= (SELECT upto FROM spans_text_upto) BEGIN "
        "INSERT INTO spans_text(spans_text, rowid, attributes) "
        "VALUES ('delete', old.rowid, old.attributes); END",
    ],
)


def _has_trigrams(conn: sqlite3.Connection) -> bool:
    try:
        conn.execute("CREATE VIRTUAL TABLE temp.probe USING fts5(x, tokenize='trigram')")
    except sqlite3.OperationalError:  # no FTS5, or a SQLite before 3.34
        return False
    conn.execute("DROP TABLE temp.probe")
    return True


def _pieces(text: str) -> str | None:
    """The FTS5 query of the spans whose attributes hold every three characters of ``text``
    (as written in the JSON), or None for a text under three characters."""
    needle = sql.in_json(text)
    pieces = list(dict.fromkeys(needle[i : i + 3] for i in range(len(needle) - 2)))
    if not pieces:
        return None
    if len(pieces) > _PIECES:  # spread over the whole text
        pieces = [pieces[i * len(pieces) // _PIECES] for i in range(_PIECES)]
    return " AND ".join('"' + p.replace('"', '""') + '"' for p in pieces)


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
        self._text_index = False

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
                text_index = [_TEXT_INDEX] if _has_trigrams(conn) else []
                apply_migrations(conn, [*MIGRATIONS, *text_index])
                self._text_index = (
                    conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'spans_text'").fetchone()
                    is not None
                )
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

    def prune(
        self,
        older_than_ns: int | None = None,
        max_spans: int | None = None,
        *,
        limit: int | None = None,
    ) -> int:
        with self._session(write=True) as conn:
            deleted = sql.prune(conn, _DIALECT, older_than_ns, max_spans, limit)
            if deleted and self._text_index:  # the newest spans gone: their rowids come again
                conn.execute(
                    "UPDATE spans_text_upto SET upto = min(upto, "
                    "coalesce((SELECT max(rowid) FROM spans), 0))"
                )
            return deleted

    def index_text(self, limit: int = 2000) -> int:
        """Add up to ``limit`` of the spans written since the last call to the text index
        (oldest first); returns how many (0: the index is complete, or there is none). The
        writer calls it when it has caught up; a search covers the rest by a scan."""
        with self._session(write=True) as conn:
            if not self._text_index:
                return 0
            upto = conn.execute("SELECT upto FROM spans_text_upto").fetchone()[0]
            last, n = conn.execute(
                "SELECT max(rowid), count(*) FROM (SELECT rowid FROM spans WHERE rowid > ? "
                "ORDER BY rowid LIMIT ?)",
                (upto, max(1, limit)),
            ).fetchone()
            if not n:
                return 0
            conn.execute(
                "INSERT INTO spans_text(rowid, attributes) SELECT rowid, attributes FROM spans "
                "WHERE rowid > ? AND rowid <= ?",
                (upto, last),
            )
            conn.execute("UPDATE spans_text_upto SET upto = ?", (last,))
            return int(n)

    # --- reads ---------------------------------------------------------------------------

    def list_traces(self, query: TraceQuery) -> list[TraceSummary]:
        with self._session(write=False) as conn:
            text, args = sql.list_sql(query, _DIALECT, lambda t: self._search(conn, t))
            rows = conn.execute(text, args).fetchall()
        return [sql.summary_of(r) for r in rows]

    def _search(self, conn: sqlite3.Connection, text: str) -> tuple[str, list[Any]]:
        """The text condition: the spans the index finds, checked with ``LIKE``; the scan
        without an index, for a text under three characters, or one the index finds in more
        than :data:`_CANDIDATES` spans."""
        match = _pieces(text) if self._text_index else None
        if match is not None:
            found = conn.execute(
                "SELECT count(*) FROM (SELECT 1 FROM spans_text WHERE spans_text MATCH ? LIMIT ?)",
                (match, _CANDIDATES),
            ).fetchone()[0]
            if found < _CANDIDATES:
                upto = conn.execute("SELECT upto FROM spans_text_upto").fetchone()[0]
                pattern = f"%{sql.escape_like(sql.in_json(text))}%"
                return (
                    "(t.name LIKE ? ESCAPE '\\' OR t.trace_id IN (SELECT s.trace_id FROM spans s "
                    "WHERE s.rowid IN (SELECT rowid FROM spans_text WHERE spans_text MATCH ?) "
                    "AND s.attributes LIKE ? ESCAPE '\\' UNION ALL SELECT s.trace_id FROM spans s "
                    "WHERE s.rowid > ? AND s.attributes LIKE ? ESCAPE '\\'))",
                    [f"%{sql.escape_like(text)}%", match, pattern, upto, pattern],
                )
        return sql.scan_search(_DIALECT, text)

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
