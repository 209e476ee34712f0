"""The SQLite prompt store: ``HANLIN_HOME/prompts.sqlite`` in WAL mode, one ``BEGIN IMMEDIATE``
transaction per change, the schema as named migrations (the SQL itself is :mod:`.sql`'s). A file
that is not a database raises :class:`~hanlin.errors.StoreCorruptError` with what to do."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import hanlin.prompts.sql as sql
from hanlin.config import Settings
from hanlin.errors import StoreCorruptError
from hanlin.prompts.base import LabelMove, NewVersion, PromptSummary, PromptVersion
from hanlin.sqlite_migrations import apply_migrations

FILENAME = "prompts.sqlite"

MIGRATIONS: list[tuple[str, list[str]]] = [
    (
        "0001_initial",
        [
            *sql.TABLES,
            "CREATE TRIGGER prompt_versions_immutable BEFORE UPDATE ON prompt_versions "
            "BEGIN SELECT RAISE(ABORT, 'prompt versions are immutable'); END",
        ],
    ),
]


def _q(statement: str) -> str:
    return statement


class SqlitePrompts:
    """Prompts in one SQLite file. Cheap to construct; the file opens on first use. Safe to
    share between threads (one connection behind a lock) and processes (WAL, a busy timeout,
    ``BEGIN IMMEDIATE`` for every change)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()

    @classmethod
    def from_settings(cls, settings: Settings) -> SqlitePrompts:
        return cls(settings.home / FILENAME)

    # --- plumbing ------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.execute("PRAGMA busy_timeout=30000")
                apply_migrations(conn, MIGRATIONS)
            except sqlite3.DatabaseError as exc:
                conn.close()
                raise self._corrupt(exc) from exc
            self._conn = conn
        return self._conn

    def _corrupt(self, exc: sqlite3.DatabaseError) -> StoreCorruptError:
        return StoreCorruptError(
            f"the prompt registry {self.path} cannot be read ({exc})",
            hint=f"move {self.path} away (Hanlin makes a new one with the built-in prompts; "
            "your own versions are in the old file), or restore it from a backup",
            code="prompt_store_corrupt",
        )

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.IntegrityError | sqlite3.OperationalError):
                    raise
                raise self._corrupt(exc) from exc

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for reads that take several statements."""
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN")
                try:
                    yield conn
                finally:
                    conn.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.IntegrityError | sqlite3.OperationalError):
                    raise
                raise self._corrupt(exc) from exc

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

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
            sql.get(conn, _q, name)  # the prompt exists
            return sql.labels(conn, _q, name)

    def label_history(self, name: str) -> list[LabelMove]:
        with self._read() as conn:
            return sql.label_history(conn, _q, name)

    def generation(self) -> int:
        with self._lock:
            conn = self._connection()
            try:
                return sql.generation(conn, _q)
            except sqlite3.DatabaseError as exc:
                raise self._corrupt(exc) from exc

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
