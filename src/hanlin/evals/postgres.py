"""The PostgreSQL evaluation store (``database_url`` set): the SQLite store's tables in the
shared database (migrations 50, 51 of :mod:`hanlin.db.migrations`), so runs started on any machine
are listed, compared and resumed from every other. Numbering a dataset's versions takes a
transaction advisory lock on the name, so two imports of one name at once take turns."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from hanlin.evals.sql import SqlEvalStore

if TYPE_CHECKING:
    import psycopg

    from hanlin.db.postgres import Database

#: first key of the advisory locks on dataset names ("ev"), apart from every other lock's
_LOCK_CLASS = 0x6576


class PostgresEvalStore(SqlEvalStore):
    """Datasets and runs in the database of ``url``. Cheap to construct; connects on first
    use. Safe to share between threads and between processes on any machine."""

    mark = "%s"

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

    def _lock_name(self, conn: Any, name: str) -> None:
        key = zlib.crc32(name.encode("utf-8")) - 2**31  # an int4
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCK_CLASS, key))

    def close(self) -> None:
        """Nothing to close: the process's pool outlives one store (closed at exit)."""
