"""One PostgreSQL connection pool per process and database URL, with the schema applied.

:func:`database` is how every stateful part reaches PostgreSQL: it opens a ``psycopg`` pool
(``psycopg_pool``), checks the server has pgvector, and applies the versioned schema under an
advisory lock (several replicas starting at once apply it once). Failures become
:class:`~hanlin.errors.HanlinError` s whose message names the URL with its password redacted
and whose hint says what to check.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from hanlin.db.url import check_url, redact
from hanlin.errors import ConfigError, DatabaseUnavailableError, MissingDependencyError

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

_lock = threading.Lock()
_databases: dict[str, Database] = {}


class Database:
    """A pool of connections to one PostgreSQL database whose schema is current."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 16) -> None:
        self.url = check_url(url)
        self.shown = redact(url)
        try:
            import psycopg
            from pgvector.psycopg import register_vector
            from psycopg_pool import ConnectionPool
        except ImportError as exc:  # pragma: no cover - the postgres extra is missing
            raise MissingDependencyError(
                exc.name or "psycopg", "postgres", "database_url = postgresql://…"
            ) from exc
        self._psycopg = psycopg
        first = self._connect_once()
        try:
            self._check_pgvector(first)
            from hanlin.db.migrations import migrate

            migrate(first, self.shown)
        finally:
            first.close()

        def configure(conn: psycopg.Connection[Any]) -> None:
            register_vector(conn)
            conn.autocommit = False

        self.pool: ConnectionPool[Any] = ConnectionPool(
            self.url,
            min_size=min_size,
            max_size=max_size,
            configure=configure,
            open=True,
            name="hanlin",
            # a request while the database is away fails (503) within this, not after 30 s
            timeout=10.0,
            reconnect_timeout=60.0,
            check=ConnectionPool.check_connection,
        )

    def _connect_once(self) -> psycopg.Connection[Any]:
        try:
            return self._psycopg.connect(self.url, connect_timeout=10, autocommit=True)
        except self._psycopg.OperationalError as exc:
            raise DatabaseUnavailableError(
                f"cannot connect to the database {self.shown}: {_first_line(exc)}",
                hint="check that PostgreSQL is running and reachable from here, and the host, "
                "port, user, password and database name in database_url "
                "(`hanlin db start` runs a local one)",
            ) from exc

    def _check_pgvector(self, conn: psycopg.Connection[Any]) -> None:
        row = conn.execute(
            "SELECT default_version, installed_version FROM pg_available_extensions "
            "WHERE name = 'vector'"
        ).fetchone()
        if row is None:
            raise ConfigError(
                f"the database {self.shown} has no pgvector extension available",
                hint="install pgvector ≥ 0.8 on the PostgreSQL server "
                "(https://github.com/pgvector/pgvector#installation, e.g. the "
                "postgresql-NN-pgvector package), or use `hanlin db start`",
            )
        if row[1] is None:
            try:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            except self._psycopg.errors.InsufficientPrivilege as exc:
                raise ConfigError(
                    f"pgvector is available on {self.shown} but not enabled, and this user "
                    "may not enable it",
                    hint="as a superuser run: CREATE EXTENSION vector;",
                ) from exc
        version = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
        ).fetchone()
        if version is not None and _version(version[0]) < (0, 8):
            raise ConfigError(
                f"pgvector {version[0]} on {self.shown} is too old (Hanlin needs ≥ 0.8 for "
                "iterative index scans)",
                hint="upgrade the extension: ALTER EXTENSION vector UPDATE;",
            )

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection inside one transaction: committed when the block ends, rolled
        back on an error. A database that went away raises
        :class:`~hanlin.errors.DatabaseUnavailableError`."""
        with self.unavailable(), self.pool.connection() as conn:
            yield conn

    @contextmanager
    def unavailable(self) -> Iterator[None]:
        """Lost connections and pool timeouts inside the block become
        :class:`~hanlin.errors.DatabaseUnavailableError` (for code that holds a connection
        outside :meth:`connection`)."""
        try:
            yield
        except self._psycopg.OperationalError as exc:
            raise DatabaseUnavailableError(
                f"the database {self.shown} is unavailable: {_first_line(exc)}",
                hint="check that PostgreSQL is running; the operation can be retried",
            ) from exc

    def close(self) -> None:
        self.pool.close()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".")[:2] if p.isdigit())


def database(url: str) -> Database:
    """The process's pool for ``url`` (opened, checked and migrated on first use)."""
    with _lock:
        db = _databases.get(url)
        if db is None:
            if not _databases:
                atexit.register(close_all)  # before a local server's own exit handler stops it
            db = _databases[url] = Database(url)
        return db


def forget(url: str) -> None:
    """Close and forget the pool of ``url`` (a test dropping its database)."""
    with _lock:
        db = _databases.pop(url, None)
    if db is not None:
        db.close()


def close_all() -> None:
    """Close every pool this process opened (tests; a server's shutdown)."""
    with _lock:
        for db in _databases.values():
            db.close()
        _databases.clear()
