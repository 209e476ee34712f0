"""A worker of the durable job queue (:mod:`hanlin.db.queue`): takes the jobs replicas queued
(uploads, URLs, syncs, re-embeds) and runs each with :class:`~hanlin.server.durable_jobs.JobRunner`.

``hanlin worker`` runs one in its main thread; :meth:`JobWorker.start` runs one in a thread of
the calling process (the tests run one beside each server over PostgreSQL, as a deployment runs
``hanlin worker`` beside ``hanlin serve``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from hanlin.config import Settings
from hanlin.errors import ConfigError

if TYPE_CHECKING:
    import procrastinate

    from hanlin.server.durable_jobs import JobRunner

log = logging.getLogger("hanlin.worker")

#: seconds between reconnection attempts while the database is unreachable (doubling)
RECONNECT_FIRST, RECONNECT_MAX = 1.0, 30.0


class JobWorker:
    """Runs queued jobs one at a time, as ``hanlin worker`` does, until :meth:`stop`.

    ``stalled_after``: seconds without a heartbeat after which another worker's job is run
    again here; ``heartbeat``: seconds between this worker's heartbeats; ``polling``: seconds
    between looks at the queue when no notification came (new jobs are announced at once).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        stalled_after: float = 30.0,
        heartbeat: float = 5.0,
        polling: float = 2.0,
    ) -> None:
        if not settings.database_url:
            raise ConfigError(
                "`hanlin worker` needs the shared database: database_url is not set",
                hint='set database_url = "postgresql://…" in hanlin.toml (or '
                "HANLIN_DATABASE_URL); without it, `hanlin serve` runs jobs itself",
            )
        self.settings = settings
        self.url = settings.database_url
        self.stalled_after, self.heartbeat, self.polling = stalled_after, heartbeat, polling
        #: the runner of the current run (None before it starts)
        self.runner: JobRunner | None = None
        self._stopping = threading.Event()
        self._mutex = threading.Lock()
        self._wake: Any = None  # sets the running loop's stop event, from any thread
        self._thread: threading.Thread | None = None

    # -- running -----------------------------------------------------------------------------
    def run(self, *, burst: bool = False) -> None:
        """Run jobs until :meth:`stop` (``burst``: until the queue is empty). While the
        database is away, wait and reconnect: a job that was running is re-run from its first
        unfinished file once its heartbeat is stale."""
        from hanlin.db.url import redact

        delay = RECONNECT_FIRST
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                asyncio.run(self.run_async(burst=burst))
                return
            except Exception as exc:
                if not database_gone(exc):
                    raise
                if time.monotonic() - started > 2 * RECONNECT_MAX:
                    delay = RECONNECT_FIRST  # it had been running fine: start the backoff again
                log.warning(
                    "worker: lost the database at %s (%s); reconnecting in %.0f s",
                    redact(self.url),
                    type(exc).__name__,
                    delay,
                )
                self._stopping.wait(delay)
                delay = min(2 * delay, RECONNECT_MAX)

    async def run_async(self, *, burst: bool = False) -> None:
        """One run on the current event loop, until :meth:`stop`, the queue is empty
        (``burst``) or the database connection is lost (raised)."""
        import procrastinate

        from hanlin.db.postgres import database
        from hanlin.db.queue import BACKOFF_SECONDS, MAX_ATTEMPTS, QUEUE, TASK
        from hanlin.knowledge.pool import KnowledgeBases
        from hanlin.server.durable_jobs import JobRunner

        database(self.url)  # a clear error now if it is unreachable, and the schema applied
        knowledge = self.settings.knowledge.model_copy(
            update={"allow_private_urls": self.settings.server.allow_private_urls}
        )
        writer = self.settings.model_copy(update={"knowledge": knowledge})
        kbs = KnowledgeBases(writer)
        runner = self.runner = JobRunner(writer, kbs)
        app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=self.url))

        @app.task(
            name=TASK,
            queue=QUEUE,
            retry=procrastinate.RetryStrategy(
                max_attempts=MAX_ATTEMPTS, exponential_wait=BACKOFF_SECONDS
            ),
        )
        def run_job(job_id: str) -> None:
            runner.run(job_id)

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        with self._mutex:
            self._wake = lambda: loop.call_soon_threadsafe(stop.set)
            if self._stopping.is_set():
                runner.hand_back()
                stop.set()
        try:
            async with app.open_async():
                reaper = asyncio.create_task(self._requeue_stalled(app, stop))
                work = asyncio.create_task(
                    app.run_worker_async(
                        queues=[QUEUE],
                        concurrency=1,
                        wait=not burst,
                        update_heartbeat_interval=self.heartbeat,
                        stalled_worker_timeout=self.stalled_after,
                        fetch_job_polling_interval=self.polling,
                        # `hanlin worker` maps Ctrl-C and SIGTERM to stop() itself
                        install_signal_handlers=False,
                    )
                )
                stopped = asyncio.create_task(stop.wait())
                try:
                    await asyncio.wait({work, stopped}, return_when=asyncio.FIRST_COMPLETED)
                    if not work.done():  # stop(): the job in hand finishes first
                        work.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await work
                finally:
                    stop.set()
                    stopped.cancel()
                    await reaper
        finally:
            with self._mutex:
                self._wake = None
            runner.close()
            kbs.close()

    async def _requeue_stalled(self, app: procrastinate.App, stop: asyncio.Event) -> None:
        """Jobs whose worker stopped heart-beating (killed, machine gone) run again."""
        from hanlin.db.queue import QUEUE

        while not stop.is_set():
            try:
                for job in await app.job_manager.get_stalled_jobs(
                    queue=QUEUE, seconds_since_heartbeat=self.stalled_after
                ):
                    log.warning("job %s: its worker is gone; running it again", job.id)
                    await app.job_manager.retry_job(job)
            except Exception:
                log.warning("could not check for stalled jobs", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(1.0, self.stalled_after / 3))

    # -- in a thread -------------------------------------------------------------------------
    def start(self) -> JobWorker:
        """Run in a daemon thread of this process; :meth:`stop` ends it."""
        self._thread = threading.Thread(target=self.run, name="hanlin-worker", daemon=True)
        self._thread.start()
        return self

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stopping.is_set()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop taking jobs; the job in hand stops after its current file and goes back to
        the queue with the files it did not reach (another worker goes on with them). From
        another thread than the worker's, this waits for a :meth:`start`-ed worker at most
        ``timeout`` s (None: as long as the current file takes). False when it is still
        running then."""
        with self._mutex:
            self._stopping.set()
            if self.runner is not None:
                self.runner.hand_back()
            if self._wake is not None:
                self._wake()
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout)
        return not thread.is_alive()


def database_gone(exc: BaseException) -> bool:
    """Whether ``exc`` means the database connection was lost (the worker waits and goes
    on), not a bug (the worker stops with the traceback)."""
    import psycopg
    from procrastinate import exceptions as pe

    from hanlin.errors import DatabaseUnavailableError

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(
            seen, (psycopg.OperationalError, pe.ConnectorException, DatabaseUnavailableError)
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
