"""The SQLite evaluation store: ``HANLIN_HOME/evals.sqlite`` in WAL mode, one transaction per
change, the schema as named migrations (:mod:`hanlin.sqlite_migrations`)."""

from __future__ import annotations

import sqlite3

from hanlin.config import Settings
from hanlin.evals.sql import REPORT_COLUMN, SCHEMA, SqlEvalStore
from hanlin.sqlite_migrations import SqliteFile

FILENAME = "evals.sqlite"
MIGRATIONS: list[tuple[str, list[str]]] = [
    ("0001_initial", SCHEMA),
    ("0002_import_reports", [REPORT_COLUMN]),
]


class SqliteEvalStore(SqliteFile, SqlEvalStore):
    """Datasets and runs in one SQLite file. Cheap to construct; the file opens on first use.
    Safe to share between threads (one connection behind a lock) and between processes (WAL,
    a busy timeout, ``BEGIN IMMEDIATE`` for every change)."""

    migrations = MIGRATIONS

    @classmethod
    def from_settings(cls, settings: Settings) -> SqliteEvalStore:
        return cls(settings.home / FILENAME)

    def _many(self, conn: sqlite3.Connection, text: str, rows: list[tuple[object, ...]]) -> None:
        conn.executemany(text, rows)
