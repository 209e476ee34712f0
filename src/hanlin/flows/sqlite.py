"""The SQLite run store: ``HANLIN_HOME/workflows.sqlite`` in WAL mode with ``synchronous=FULL``
(a checkpoint survives a power cut), one ``BEGIN IMMEDIATE`` transaction per change, the
schema as named migrations (:mod:`hanlin.sqlite_migrations`)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hanlin.flows.sql import SCHEMA, STARTED_BY, SqlFlowStore
from hanlin.sqlite_migrations import apply_migrations

MIGRATIONS: list[tuple[str, list[str]]] = [
    ("0001_initial", SCHEMA),
    ("0002_started_by", STARTED_BY),
]


class SqliteFlowStore(SqlFlowStore):
    """Runs in one SQLite file. Cheap to construct; the file opens on first use. Safe to
    share between threads (one connection behind a lock) and between processes."""

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
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            apply_migrations(conn, MIGRATIONS)
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
