"""The SQLite evaluation store: ``HANLIN_HOME/evals.sqlite`` in WAL mode, one transaction per
change, the schema as named migrations (:mod:`hanlin.sqlite_migrations`)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hanlin.config import Settings
from hanlin.evals.sql import REPORT_COLUMN, SCHEMA, SqlEvalStore
from hanlin.sqlite_migrations import apply_migrations

FILENAME = "evals.sqlite"
MIGRATIONS: list[tuple[str, list[str]]] = [
    ("0001_initial", SCHEMA),
    ("0002_import_reports", [REPORT_COLUMN]),
]


class SqliteEvalStore(SqlEvalStore):
    """Datasets and runs in one SQLite file. Cheap to construct; the file opens on first use.
    Safe to share between threads (one connection behind a lock) and between processes (WAL,
    a busy timeout, ``BEGIN IMMEDIATE`` for every change)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()

    @classmethod
    def from_settings(cls, settings: Settings) -> SqliteEvalStore:
        return cls(settings.home / FILENAME)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
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

    def _many(self, conn: sqlite3.Connection, text: str, rows: list[tuple[object, ...]]) -> None:
        conn.executemany(text, rows)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
