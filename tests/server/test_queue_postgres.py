"""The durable queue's guarantees, shown on a real PostgreSQL: two workers racing for one job
cannot both take it, and a job survives the process that queued it."""

from __future__ import annotations

import asyncio

import procrastinate

from hanlin.db.postgres import database
from hanlin.db.queue import QUEUE, TASK, defer, deferrer


def test_two_workers_can_never_take_the_same_job(pg_url: str) -> None:
    database(pg_url)  # the schema, queue included
    job_id = defer(deferrer(pg_url), "job_race")  # queued by a "replica" that then goes away

    async def race() -> list[object]:
        apps = [
            procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=pg_url))
            for _ in range(2)
        ]
        for app in apps:
            await app.open_async()
        try:
            ids = [await app.job_manager.register_worker() for app in apps]
            # both fetch at the same moment: FOR UPDATE SKIP LOCKED hands the row to one
            got = await asyncio.gather(
                *(
                    app.job_manager.fetch_job([QUEUE], wid)
                    for app, wid in zip(apps, ids, strict=True)
                )
            )
            again = await apps[0].job_manager.fetch_job([QUEUE], ids[0])
            return [*got, again]
        finally:
            for app in apps:
                await app.close_async()

    first, second, again = asyncio.run(race())
    taken = [j for j in (first, second) if j is not None]
    assert len(taken) == 1 and again is None
    job = taken[0]
    assert job.id == job_id and job.task_name == TASK  # type: ignore[attr-defined]
    assert job.task_kwargs == {"job_id": "job_race"}  # type: ignore[attr-defined]
