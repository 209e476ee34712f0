"""The durable job queue of the shared-database mode: procrastinate on the same PostgreSQL.

Chosen over pgqueuer (both are maintained, Postgres-native, LISTEN/NOTIFY-driven): procrastinate
runs synchronous task functions in threads (Hanlin's ingest is synchronous), has retries with
exponential backoff, job locks, worker heartbeats with stalled-job detection (how a job whose
worker was killed with ``kill -9`` is handed to another worker), and a sync ``defer`` for code
outside an event loop. Its schema is applied by Hanlin's own migrations
(:mod:`hanlin.db.migrations`, version 10), pinned to the installed procrastinate.

Hanlin's job *records* (status, per-file progress, who submitted) live in ``hanlin_jobs`` /
``hanlin_job_files`` beside the queue: procrastinate delivers and retries the work, the records
are what every replica shows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import procrastinate

#: the queue ingest jobs go to, and the task that runs one (by Hanlin job id)
QUEUE = "hanlin-ingest"
TASK = "hanlin.run_job"
#: attempts and backoff for a job whose run raised (the database went away, say):
#: waits 2, 4, 8, 16 … seconds between attempts
MAX_ATTEMPTS = 8
BACKOFF_SECONDS = 2


def _conninfo(url: str) -> str:
    return url


def deferrer(url: str) -> procrastinate.App:
    """An app that can only defer jobs, from synchronous code (servers, the CLI)."""
    import procrastinate

    app = procrastinate.App(connector=procrastinate.SyncPsycopgConnector(conninfo=_conninfo(url)))
    app.task(name=TASK, queue=QUEUE)(_never_here)
    return app


def _never_here(**_: Any) -> None:  # pragma: no cover - deferrers do not run jobs
    raise RuntimeError("this app only defers jobs; `hanlin worker` runs them")


def defer(app: procrastinate.App, job_id: str) -> int:
    """Queue the run of Hanlin job ``job_id``; the procrastinate job id."""
    with app.open():
        return int(app.tasks[TASK].defer(job_id=job_id))
