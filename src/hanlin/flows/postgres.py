"""The PostgreSQL run store (``database_url`` set): the SQLite store's tables in the shared
database (migration 60 of :mod:`hanlin.db.migrations`), so a run paused or interrupted on one
machine is listed, answered and resumed from any other. Changes lock the run's row."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from hanlin.flows.sql import SqlFlowStore

if TYPE_CHECKING:
    import psycopg

    from hanlin.db.postgres import Database


class PostgresFlowStore(SqlFlowStore):
    """Runs in the database of ``url``. Cheap to construct; connects on first use."""

    mark = "%s"
    for_update = " FOR UPDATE"

    def __init__(self, url: str) -> None:
        self.url = url
        self._db: Database | None = None

    def _database(self) -> Database:
        if self._db is None:
            from hanlin.db.postgres import database

            self._db = database(self.url)
        return self._db

    @contextmanager
    def _write(self) -> Iterator[psycopg.Connection[Any]]:
        with self._database().connection() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[psycopg.Connection[Any]]:
        with self._database().connection() as conn:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield conn

    def close(self) -> None:
        """Nothing to close: the process's pool outlives one store (closed at exit)."""
