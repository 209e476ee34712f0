"""``hanlin worker``: run ingest jobs from the shared database's queue, on any machine that
reaches the database (``database_url``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import typer
from rich.console import Console

from hanlin.config import load_settings
from hanlin.errors import ConfigError

err = Console(stderr=True)
log = logging.getLogger("hanlin.worker")


def worker(
    stalled_after: Annotated[
        float,
        typer.Option(
            help="seconds without a heartbeat after which another worker's job is re-run here"
        ),
    ] = 30.0,
    heartbeat: Annotated[
        float, typer.Option(help="seconds between this worker's heartbeats")
    ] = 5.0,
    burst: Annotated[
        bool, typer.Option("--burst", help="stop once the queue is empty (scripts, tests)")
    ] = False,
) -> None:
    """Run ingest jobs (uploads, URLs, syncs, re-embeds) from the shared database's queue.

    Start as many as you like, on any machines that reach database_url; each runs one job at
    a time. A job whose worker dies (even kill -9) is re-run by another worker once its
    heartbeat is older than --stalled-after seconds; files already stored are not redone.
    """
    import procrastinate

    from hanlin.db.postgres import database
    from hanlin.db.queue import BACKOFF_SECONDS, MAX_ATTEMPTS, QUEUE, TASK
    from hanlin.knowledge.pool import KnowledgeBases
    from hanlin.server.durable_jobs import JobRunner

    settings = load_settings()
    if not settings.database_url:
        raise ConfigError(
            "`hanlin worker` needs the shared database: database_url is not set",
            hint='set database_url = "postgresql://…" in hanlin.toml (or HANLIN_DATABASE_URL); '
            "without it, `hanlin serve` runs jobs itself",
        )
    url = settings.database_url
    database(url)  # a clear error now if it is unreachable, and the schema applied
    writer = settings.model_copy(
        update={
            "knowledge": settings.knowledge.model_copy(
                update={"allow_private_urls": settings.server.allow_private_urls}
            )
        }
    )
    runner = JobRunner(writer, KnowledgeBases(writer))
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))

    @app.task(
        name=TASK,
        queue=QUEUE,
        retry=procrastinate.RetryStrategy(
            max_attempts=MAX_ATTEMPTS, exponential_wait=BACKOFF_SECONDS
        ),
    )
    def run_job(job_id: str) -> None:
        runner.run(job_id)

    async def requeue_stalled(stop: asyncio.Event) -> None:
        """Jobs whose worker stopped heart-beating (killed, machine gone) run again."""
        while not stop.is_set():
            try:
                for job in await app.job_manager.get_stalled_jobs(
                    queue=QUEUE, seconds_since_heartbeat=stalled_after
                ):
                    log.warning("job %s: its worker is gone; running it again", job.id)
                    await app.job_manager.retry_job(job)
            except Exception:
                log.warning("could not check for stalled jobs", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(1.0, stalled_after / 3))

    async def main() -> None:
        async with app.open_async():
            stop = asyncio.Event()
            reaper = asyncio.create_task(requeue_stalled(stop))
            err.print("worker: waiting for jobs (Ctrl-C stops after the current file)")
            try:
                await app.run_worker_async(
                    queues=[QUEUE],
                    concurrency=1,
                    wait=not burst,
                    update_heartbeat_interval=heartbeat,
                    stalled_worker_timeout=stalled_after,
                    fetch_job_polling_interval=2.0,
                )
            finally:
                stop.set()
                await reaper

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    _run_until_done(main, url)


#: seconds between reconnection attempts while the database is unreachable (doubling)
RECONNECT_FIRST, RECONNECT_MAX = 1.0, 30.0


def _database_gone(exc: BaseException) -> bool:
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


def _run_until_done(main: Callable[[], Coroutine[Any, Any, None]], url: str) -> None:
    """Run the worker; while the database is away, wait and reconnect (a job it was running
    is re-run from its first unfinished file once its heartbeat is stale)."""
    from hanlin.db.url import redact

    delay = RECONNECT_FIRST
    while True:
        started = time.monotonic()
        try:
            asyncio.run(main())
            return
        except Exception as exc:
            if not _database_gone(exc):
                raise
            if time.monotonic() - started > 2 * RECONNECT_MAX:
                delay = RECONNECT_FIRST  # it had been running fine: start the backoff again
            err.print(
                f"worker: lost the database at {redact(url)} ({type(exc).__name__}); "
                f"reconnecting in {delay:.0f} s"
            )
            time.sleep(delay)
            delay = min(2 * delay, RECONNECT_MAX)
