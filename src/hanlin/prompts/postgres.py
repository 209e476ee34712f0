"""The PostgreSQL prompt store (``database_url`` set): the SQLite store's tables in the shared
database (migration 35, ``PROMPTS_SQL`` in :mod:`hanlin.db.migrations`), so a version created
or a label moved through one replica is what every replica reads. Each change is one transaction
that first locks the ``prompt_state`` row: writers on any replica take turns, and version numbers
stay distinct and gapless."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import hanlin.prompts.sql as sql
from hanlin.errors import InvalidInputError
from hanlin.prompts.base import LabelMove, NewVersion, PromptSummary, PromptVersion

if TYPE_CHECKING:
    import psycopg

    from hanlin.db.postgres import Database


def _q(statement: str) -> str:
    return statement.replace("?", "%s")


class PostgresPrompts:
    """Prompts in the database of ``url``. Cheap to construct; connects on first use. Safe to
    share between threads and between processes on any machine."""

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
        """One transaction; PostgreSQL's refusal of a NUL character becomes a 400."""
        import psycopg

        try:
            with self._database().connection() as conn:
                yield conn
        except psycopg.DataError as exc:
            if "NUL" not in str(exc):
                raise
            raise InvalidInputError(
                "the text holds a NUL character (U+0000), which the database cannot store",
                hint="remove the NUL characters and send it again",
            ) from None

    @contextmanager
    def _read(self) -> Iterator[psycopg.Connection[Any]]:
        """A consistent snapshot for reads that take several statements."""
        with self._database().connection() as conn:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield conn

    def close(self) -> None:
        """Nothing to close: the process's pool outlives one store (closed at exit)."""

    # --- the protocol --------------------------------------------------------------------

    def create(self, name: str, new: NewVersion, author: str) -> tuple[PromptVersion, bool]:
        with self._write() as conn:
            return sql.create(conn, _q, name, new, author)

    def get(
        self, name: str, *, version: int | None = None, label: str | None = None
    ) -> PromptVersion:
        with self._read() as conn:
            return sql.get(conn, _q, name, version, label)

    def versions(self, name: str) -> list[PromptVersion]:
        with self._read() as conn:
            return sql.versions(conn, _q, name)

    def set_label(self, name: str, label: str, version: int, actor: str) -> LabelMove:
        with self._write() as conn:
            return sql.set_label(conn, _q, name, label, version, actor)

    def labels(self, name: str) -> dict[str, int]:
        with self._read() as conn:
            sql.get(conn, _q, name)
            return sql.labels(conn, _q, name)

    def label_history(self, name: str) -> list[LabelMove]:
        with self._read() as conn:
            return sql.label_history(conn, _q, name)

    def generation(self) -> int:
        with self._database().connection() as conn:
            return sql.generation(conn, _q)

    def seed(self, prompts: list[tuple[str, NewVersion]]) -> int:
        with self._read() as conn:
            if not sql.missing_builtins(conn, _q, prompts):
                return 0
        with self._write() as conn:
            return sql.seed(conn, _q, prompts)

    # last: inside the class body the name ``list`` is this method, not the builtin
    def list(self) -> list[PromptSummary]:
        with self._read() as conn:
            return sql.summaries(conn, _q)
