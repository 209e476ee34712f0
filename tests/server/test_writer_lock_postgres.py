"""A knowledge base's writer lock with ``database_url`` holds across processes (each pool here is
another process's session): one job writes a knowledge base at a time on every worker, and a
replica deleting it waits for that job."""

from __future__ import annotations

import threading

from hanlin.db.locks import SharedLock
from hanlin.db.postgres import Database
from hanlin.server.durable_jobs import _WRITER_NAMESPACE


def test_the_writer_lock_is_one_lock_for_every_process(pg_url: str) -> None:
    here, there = Database(pg_url, max_size=2), Database(pg_url, max_size=2)
    try:
        mine = SharedLock(here, _WRITER_NAMESPACE, "docs")
        theirs = SharedLock(there, _WRITER_NAMESPACE, "docs")
        other_kb = SharedLock(there, _WRITER_NAMESPACE, "notes")
        assert mine.acquire(timeout=5)
        assert not theirs.acquire(timeout=0.3)  # another process: waits, then gives up
        assert not theirs.acquire(blocking=False)
        assert other_kb.acquire(blocking=False)  # another knowledge base is not held
        other_kb.release()
        # released from another thread than the one that took it (a route does that)
        waiting = threading.Thread(target=lambda: theirs.acquire(timeout=10))
        waiting.start()
        threading.Thread(target=mine.release).start()
        waiting.join(10)
        assert theirs.locked() and not mine.acquire(timeout=0.2)
        theirs.release()
        with mine:
            assert not theirs.acquire(blocking=False)
        assert theirs.acquire(blocking=False)
        theirs.release()
    finally:
        here.close()
        there.close()


def test_a_holder_whose_connection_dies_releases_the_lock(pg_url: str) -> None:
    here, there = Database(pg_url, max_size=2), Database(pg_url, max_size=2)
    try:
        mine = SharedLock(here, _WRITER_NAMESPACE, "docs")
        theirs = SharedLock(there, _WRITER_NAMESPACE, "docs")
        assert mine.acquire(timeout=5)
        with there.connection() as conn:  # the holding process is killed, its session ends
            killed = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks "
                "WHERE locktype = 'advisory' AND classid = %s AND granted",
                (_WRITER_NAMESPACE,),
            ).fetchall()
        assert killed == [(True,)]
        assert theirs.acquire(timeout=10)
        mine.release()  # the dead connection: no error, the pool replaces it
        theirs.release()
    finally:
        here.close()
        there.close()
