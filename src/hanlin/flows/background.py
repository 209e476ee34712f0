"""Runs driven in the background of a long-lived process (``hanlin serve``, ``hanlin mcp serve``).

Each drive is an asyncio task of its own, started in the caller's context (so it runs as the
caller): a client that asks for a run follows its events, and the run goes on when that client
leaves — it is durable, and its state is in the store for whoever looks next. Stopping the
process cancels the drives; each lets go of its run, and :meth:`BackgroundRuns.resume_interrupted`
continues them (and those of a process that died) when the next process starts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from hanlin.access.caller import Access, acting_as
from hanlin.errors import HanlinError
from hanlin.flows.base import RunRecord
from hanlin.flows.engine import FlowEngine
from hanlin.flows.events import FlowEvent, RunFinishedEvent, RunPausedEvent

log = logging.getLogger("hanlin.flows")
_END = object()


class Follower:
    """The events of one drive, from its first (``run_started``) to its last (``run_paused``
    or ``run_finished``). Closing it (or leaving it) does not stop the run."""

    def __init__(self, first: FlowEvent, queue: asyncio.Queue[Any]) -> None:
        self.first = first
        self._queue = queue
        self.listening = True

    async def __aiter__(self) -> AsyncIterator[FlowEvent]:
        yield self.first
        try:
            while (item := await self._queue.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.listening = False

    def detach(self) -> None:
        """Stop listening: the run goes on, its events are not kept."""
        self.listening = False

    def put(self, item: Any) -> None:
        if self.listening or item is _END:
            self._queue.put_nowait(item)

    async def last(self) -> FlowEvent:
        """Follow to the end: the run's last event (paused or finished)."""
        last = self.first
        async for event in self:
            last = event
        return last


class BackgroundRuns:
    """The drives in flight on one engine (one per process)."""

    def __init__(self, engine: FlowEngine) -> None:
        self.engine = engine
        self._tasks: set[asyncio.Task[None]] = set()

    async def drive(self, run_id: str) -> Follower:
        """Drive ``run_id`` from its last checkpoint in a task of its own, as the current
        caller. Returns once it started, with a follower of its events; what stops it from
        starting (no such run, finished, running elsewhere, a missing scope) is raised here."""
        queue: asyncio.Queue[Any] = asyncio.Queue()
        holder: list[Follower] = []

        async def pump() -> None:
            try:
                async for event in self.engine.astream(run_id):
                    if not holder:
                        holder.append(Follower(event, queue))
                        queue.put_nowait(holder[0])
                    else:
                        holder[0].put(event)
            except Exception as exc:
                (holder[0].put if holder else queue.put_nowait)(exc)
            finally:
                (holder[0].put if holder else queue.put_nowait)(_END)

        task = asyncio.create_task(pump(), name=f"workflow run {run_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        first = await queue.get()
        if isinstance(first, BaseException):
            raise first
        if first is _END:  # cannot happen: a drive that starts emits run_started
            raise HanlinError(f"workflow run '{run_id}' stopped before it started")
        assert isinstance(first, Follower)
        return first

    async def resume_interrupted(
        self, access_of: Callable[[RunRecord], Access | None], concurrency: int
    ) -> int:
        """Resume the runs a gone process left running, ``concurrency`` at a time, each as
        ``access_of(run)`` (None: skipped — the key that started it was revoked). Returns how
        many were resumed; each outcome is logged."""
        runs = await asyncio.to_thread(self.engine.interrupted_runs)
        if not runs:
            return 0
        log.info("resuming %d workflow run(s) left running by a stopped process", len(runs))
        gate = asyncio.Semaphore(concurrency)
        resumed = 0

        async def one(run: RunRecord) -> None:
            nonlocal resumed
            who = access_of(run)
            if who is None:
                log.warning(
                    "not resuming workflow run %s (%s): the API key %s that started it is "
                    "gone or revoked; an admin can resume it",
                    run.id,
                    run.workflow,
                    run.started_by,
                )
                return
            async with gate:
                try:
                    with acting_as(who):
                        follower = await self.drive(run.id)
                    last = await follower.last()
                except HanlinError as exc:
                    log.warning("could not resume workflow run %s: %s", run.id, exc.message)
                    return
                resumed += 1
                status = (
                    "paused"
                    if isinstance(last, RunPausedEvent)
                    else last.status
                    if isinstance(last, RunFinishedEvent)
                    else "stopped"
                )
                log.info("resumed workflow run %s (%s): %s", run.id, run.workflow, status)

        await asyncio.gather(*(one(r) for r in runs))
        return resumed

    async def aclose(self, timeout: float = 10.0) -> None:
        """Stop every drive; each lets go of its run (resumed by the next process)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)


__all__ = ["BackgroundRuns", "Follower"]
