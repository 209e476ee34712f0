"""A re-entrant lock shared by every process using one PostgreSQL database: a session
advisory lock held by a dedicated pooled connection, plus an in-process re-entrant lock."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

    from hanlin.db.postgres import Database


class AdvisoryLock:
    """``pg_advisory_lock(namespace, key)``; re-entrant within the owning process. When the
    lock is not had within ``timeout`` seconds, ``on_timeout()`` gives the error to raise."""

    def __init__(
        self,
        db: Database,
        namespace: int,
        key: int,
        *,
        timeout: float,
        on_timeout: Any,
    ) -> None:
        self.db = db
        self.ids = (namespace, key)
        self.timeout = timeout
        self._on_timeout = on_timeout
        self._rlock = threading.RLock()
        self._depth = 0
        self._conn: psycopg.Connection[Any] | None = None

    @contextmanager
    def hold(self) -> Iterator[None]:
        with self._rlock:
            if self._depth == 0:
                self._conn = self._acquire()
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._release()

    def _acquire(self) -> psycopg.Connection[Any]:
        with self.db.unavailable():
            conn = self.db.pool.getconn()
            try:
                conn.autocommit = True
                conn.execute(f"SET lock_timeout = '{int(self.timeout * 1000)}ms'")
                conn.execute("SELECT pg_advisory_lock(%s, %s)", self.ids)
            except Exception as exc:
                self.db.pool.putconn(conn)
                if type(exc).__name__ == "LockNotAvailable":
                    raise self._on_timeout() from exc
                raise
        return conn

    def _release(self) -> None:
        import psycopg

        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", self.ids)
            conn.execute("RESET lock_timeout")
            conn.autocommit = False
        except psycopg.OperationalError:
            pass  # the connection died, and the server released the lock with its session
        finally:
            self.db.pool.putconn(conn)
