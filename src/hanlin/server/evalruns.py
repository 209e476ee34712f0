"""Evaluation runs the server executes, each on a thread of its own, as the caller who started
it (:func:`hanlin.evals.runner.execute`, one example at a time).

Results go to the evaluation store as each example is scored, so a run's progress is read from
the store — by this replica or any other sharing the database. A run is stopped between two
examples: on this replica by its event, and on any replica because the runner also reads the
stored status (at most once a second) and stops when a cancel has marked it ``interrupted``.
Runs do not go through the durable job queue: a run records its owner (this process) and a
heartbeat (:mod:`hanlin.evals.owner`), and when a server starts it takes over the runs a gone
process left ``running`` — one replica claims each, atomically — and finishes them, skipping
what was scored (:meth:`EvalRuns.resume_orphaned`). A run that cannot be reopened is marked
``failed`` with the reason and how to resume it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from hanlin.access.caller import LOCAL, acting_as
from hanlin.errors import HanlinError
from hanlin.evals.base import EvalStore
from hanlin.evals.owner import (
    HEARTBEAT_S,
    RELEASED,
    orphaned_runs,
    process_owner,
    take_over,
)
from hanlin.evals.runner import Plan, execute, reopen_run
from hanlin.models.gateway import Gateway

log = logging.getLogger("hanlin.server.evals")
#: seconds between reads of a running run's stored status (a cancel from another replica)
STATUS_EVERY = 1.0


@dataclass(slots=True)
class LiveRun:
    """What this replica knows of a run it executes: progress beyond the stored count."""

    run_id: str
    total: int
    done: int = 0
    current: str = ""
    started_at: float = field(default_factory=time.time)
    stop: threading.Event = field(default_factory=threading.Event)
    _checked: float = 0.0

    def progress(self, done: int, total: int, current: str) -> None:
        self.done, self.total, self.current = done, total, current

    def summary(self) -> dict[str, Any]:
        elapsed = max(1e-6, time.time() - self.started_at)
        return {
            "done": self.done,
            "total": self.total,
            "current": self.current,
            "started_at": self.started_at,
            "elapsed_s": elapsed,
            "stopping": self.stop.is_set(),
        }


class EvalRuns:
    """The evaluation runs in flight on this server."""

    def __init__(self, store: EvalStore) -> None:
        self.store = store
        self._live: dict[str, tuple[LiveRun, threading.Thread]] = {}
        self._mutex = threading.Lock()
        self._beating: threading.Thread | None = None
        self._closed = threading.Event()

    def start(self, plan: Plan) -> LiveRun:
        """Execute ``plan`` in the background, in the calling context (the caller's access)."""
        live = LiveRun(plan.run.id, plan.run.total)
        ctx = contextvars.copy_context()
        thread = threading.Thread(
            target=ctx.run,
            args=(self._run, live, plan),
            name=f"hanlin-eval-{plan.run.id}",
            daemon=True,
        )
        with self._mutex:
            self._live[live.run_id] = (live, thread)
            if self._beating is None:
                self._beating = threading.Thread(
                    target=self._heartbeat, name="hanlin-eval-heartbeat", daemon=True
                )
                self._beating.start()
        thread.start()
        return live

    def resume_orphaned(self, gateway: Gateway) -> list[str]:
        """Take over the runs a gone process left ``running`` (each claimed atomically: on
        several replicas only one takes a run) and finish them in the background, in the
        calling context. A run that cannot be reopened (its target is gone) is marked
        ``failed`` with the reason. Returns the ids taken over."""
        taken: list[str] = []
        for run in orphaned_runs(self.store):
            if self.live(run.id) is not None or not take_over(self.store, run):
                continue
            taken.append(run.id)
            try:
                plan = reopen_run(self.store, run.id, gateway)
            except HanlinError as exc:
                self._fail(
                    run.id,
                    f"the server stopped mid-run and the run could not be resumed "
                    f"({exc.message}); fix that, then resume it with "
                    f"POST /api/evals/runs/{run.id}/resume or `hanlin eval run --resume {run.id}`",
                )
                continue
            log.info("resuming evaluation run %s left running by a stopped process", run.id)
            self.start(plan)
        return taken

    async def resume_on_start(self, gateway: Gateway) -> None:
        """:meth:`resume_orphaned` as the server's own user (the runs are admin's), called
        once the app runs; a database that is down does not take the server with it."""
        try:
            with acting_as(LOCAL):
                taken = await asyncio.to_thread(self.resume_orphaned, gateway)
        except Exception:
            log.exception("could not resume the interrupted evaluation runs")
            return
        if taken:
            log.info("took over %d evaluation run(s) left running: %s", len(taken), taken)

    def _fail(self, run_id: str, reason: str) -> None:
        log.warning("evaluation run %s failed: %s", run_id, reason)
        try:
            config = self.store.run(run_id).config | {"error": reason}
            self.store.update_run(run_id, status="failed", config=config)
        except HanlinError:
            log.exception("could not record the failure of run %s", run_id)

    def _heartbeat(self) -> None:
        """Touch the runs executing here, so other hosts do not find them orphaned while one
        example takes long."""
        while not self._closed.wait(HEARTBEAT_S):
            with self._mutex:
                ids = list(self._live)
            for run_id in ids:
                with contextlib.suppress(HanlinError):  # deleted meanwhile, or store away
                    self.store.update_run(run_id)

    def live(self, run_id: str) -> LiveRun | None:
        with self._mutex:
            found = self._live.get(run_id)
        return found[0] if found else None

    def stop(self, run_id: str) -> bool:
        """Ask a run executing here to stop after its current example; False if none is."""
        live = self.live(run_id)
        if live is not None:
            live.stop.set()
        return live is not None

    def join(self, timeout: float) -> None:
        """At shutdown: every run stops after its current example, waited for at most
        ``timeout`` s in all, and is handed back (``running``, owner ``released``) so the
        next server to start — this one restarted, or another replica at once — takes it
        over. A run stopped by a cancel stays ``interrupted``."""
        self._closed.set()
        with self._mutex:
            running = list(self._live.values())
        handed = [live.run_id for live, _ in running if not live.stop.is_set()]
        for live, _ in running:
            live.stop.set()
        deadline = time.monotonic() + timeout
        for _, thread in running:
            thread.join(max(0.0, deadline - time.monotonic()))
        for run_id in handed:
            if self.live(run_id) is not None:
                continue  # still in an example: it stays ours, found orphaned once we exit
            with contextlib.suppress(HanlinError):
                run = self.store.run(run_id)
                if run.status == "interrupted":
                    released = run.config | {"owner": RELEASED}
                    self.store.update_run(run_id, status="running", config=released)

    def _should_stop(self, live: LiveRun) -> bool:
        if live.stop.is_set():
            return True
        now = time.monotonic()
        if now - live._checked >= STATUS_EVERY:
            live._checked = now
            try:
                run = self.store.run(live.run_id)
                if run.status != "running" or run.config.get("owner") != process_owner():
                    live.stop.set()  # cancelled, or taken over, on another replica
            except HanlinError:  # the run was deleted, or the store is away: stop
                live.stop.set()
        return live.stop.is_set()

    def _run(self, live: LiveRun, plan: Plan) -> None:
        try:
            execute(self.store, plan, progress=live.progress, stop=lambda: self._should_stop(live))
        except Exception as exc:  # execute left the run `failed`; keep why, for the API
            reason = getattr(exc, "message", None) or f"internal error ({type(exc).__name__})"
            self._fail(live.run_id, reason)
        finally:
            plan.close()
            with self._mutex:
                self._live.pop(live.run_id, None)
