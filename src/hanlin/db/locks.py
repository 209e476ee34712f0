"""Locks shared by every process using one PostgreSQL database: session advisory locks held
by a dedicated pooled connection, plus an in-process lock (:class:`AdvisoryLock`, re-entrant;
:class:`SharedLock`, a stand-in for :class:`threading.Lock`)."""

from __future__ import annotations

import contextlib
import threading
import time
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


class SharedLock:
    """A lock with :class:`threading.Lock`'s interface (``acquire(blocking, timeout)``,
    ``release`` from any thread, ``with``) held across every process using one database:
    ``pg_try_advisory_lock(namespace, hashtext(name))`` on a pooled connection kept while
    held, tried every ``poll`` seconds while waiting. Not re-entrant, like the lock it
    stands in for."""

    def __init__(self, db: Database, namespace: int, name: str, *, poll: float = 0.05) -> None:
        self.db = db
        self.namespace, self.name, self.poll = namespace, name, poll
        self._local = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        deadline = None if not blocking or timeout < 0 else time.monotonic() + timeout
        if not self._local.acquire(blocking, timeout):
            return False
        try:
            self._conn = self._lock_shared(blocking, deadline)
        finally:
            if self._conn is None:
                self._local.release()
        return self._conn is not None

    def _lock_shared(
        self, blocking: bool, deadline: float | None
    ) -> psycopg.Connection[Any] | None:
        """The connection now holding the advisory lock; None when it was not had in time."""
        with self.db.unavailable():
            conn = self.db.pool.getconn()
            try:
                conn.autocommit = True
                while not self._try(conn):
                    left = None if deadline is None else deadline - time.monotonic()
                    if not blocking or (left is not None and left <= 0):
                        self._put(conn)
                        return None
                    time.sleep(self.poll if left is None else min(self.poll, left))
            except BaseException:
                self._put(conn)
                raise
        return conn

    def _try(self, conn: psycopg.Connection[Any]) -> bool:
        row = conn.execute(
            "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (self.namespace, self.name)
        ).fetchone()
        return bool(row and row[0])

    def _put(self, conn: psycopg.Connection[Any]) -> None:
        import psycopg

        with contextlib.suppress(psycopg.Error):  # a broken connection: the pool discards it
            conn.autocommit = False
        self.db.pool.putconn(conn)

    def release(self) -> None:
        import psycopg

        conn, self._conn = self._conn, None
        if conn is None:
            raise RuntimeError("release of an unlocked SharedLock")
        try:
            conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (self.namespace, self.name))
        except psycopg.OperationalError:
            pass  # the connection died, and the server released the lock with its session
        finally:
            self._put(conn)
            self._local.release()

    def locked(self) -> bool:
        return self._local.locked()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
