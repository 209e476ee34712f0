"""``hanlin worker``: run ingest jobs from the shared database's queue, on any machine that
reaches the database (``database_url``)."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.console import Console

from hanlin.config import load_settings

err = Console(stderr=True)


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
    from hanlin.db.postgres import database
    from hanlin.server.job_worker import JobWorker

    worker = JobWorker(load_settings(), stalled_after=stalled_after, heartbeat=heartbeat)
    database(worker.url)  # a clear error now if it is unreachable, and the schema applied
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    err.print("worker: waiting for jobs (Ctrl-C stops once the job in hand is done)")
    worker.run(burst=burst)
