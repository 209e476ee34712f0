"""The small SQLite files in the app directory (conversations, traces, prompts, evaluations,
workflow runs): named migrations, each applied once in its own ``BEGIN IMMEDIATE`` transaction
and recorded in a ``migrations`` table (two processes opening one file at once apply each
migration once), and :class:`SqliteFile`, the base of their stores."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


def apply_migrations(
    conn: sqlite3.Connection, migrations: Sequence[tuple[str, Sequence[str]]]
) -> None:
    """Apply the ``(name, statements)`` not yet recorded on an autocommit connection."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
    )
    done = {row[0] for row in conn.execute("SELECT name FROM migrations")}
    for name, statements in migrations:
        if name in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("SELECT 1 FROM migrations WHERE name = ?", (name,)).fetchone():
                conn.execute("ROLLBACK")  # another process applied it meanwhile
                continue
            for statement in statements:
                conn.execute(statement)
            conn.execute("INSERT INTO migrations VALUES (?, ?)", (name, time.time()))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def _wal(conn: sqlite3.Connection, wait: float = 30.0) -> None:
    """Switch a new file to WAL. Several connections opening one new file at once may each be
    told "database is locked" at once (the switch does not wait on the busy timeout): retry."""
    deadline = time.monotonic() + wait
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class SqliteFile:
    """One small SQLite file of the app directory, the base of its stores: opened on first use
    (WAL, a 30 s busy timeout, foreign keys, :attr:`migrations` applied), one connection behind a
    lock shared by threads; :meth:`_write` is one ``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK``
    on any error), :meth:`_read` a consistent snapshot for reads of several statements."""

    #: the ``(name, statements)`` migrations of this file
    migrations: Sequence[tuple[str, Sequence[str]]] = ()
    #: ``"FULL"`` where a committed change must survive a power cut (WAL's default: NORMAL)
    synchronous: str | None = None

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            _wal(conn)
            if self.synchronous:
                conn.execute(f"PRAGMA synchronous={self.synchronous}")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            apply_migrations(conn, self.migrations)
            self._conn = conn
        return self._conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
