"""``hanlin worker``: run ingest jobs from the shared database's queue, on any machine that
reaches the database (``database_url``)."""

from __future__ import annotations

import logging
import os
import signal
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
    The workflows' schedule triggers fire here too (workflows.schedules).
    """
    from hanlin.db.postgres import database
    from hanlin.server.job_worker import JobWorker

    worker = JobWorker(load_settings(), stalled_after=stalled_after, heartbeat=heartbeat)
    database(worker.url)  # a clear error now if it is unreachable, and the schema applied
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if worker.settings.workflows.schedules and not burst:
        from hanlin.flows.schedule import schedules_in_thread

        schedules_in_thread(worker.settings)  # claimed in the database: one replica fires each
    err.print(
        "worker: waiting for jobs (Ctrl-C stops after the current file and hands the rest of "
        "its job to the next worker; Ctrl-C twice stops at once)"
    )

    def on_signal(signum: int, _: object) -> None:
        if worker.stopping:  # twice: now; the job is re-run once its heartbeat is stale
            err.print("worker: stopped now; another worker re-runs the job in hand")
            os._exit(128 + signum)
        err.print("worker: stopping after the current file…")
        worker.stop(timeout=0)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    worker.run(burst=burst)
