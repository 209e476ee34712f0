"""Evaluation runs the server executes, each on a thread of its own, as the caller who started
it (:func:`hanlin.evals.runner.execute`, one example at a time).

Results go to the evaluation store as each example is scored, so a run's progress is read from
the store — by this replica or any other sharing the database. A run is stopped between two
examples: on this replica by its event, and on any replica because the runner also reads the
stored status (at most once a second) and stops when a cancel has marked it ``interrupted``.
Runs do not go through the durable job queue: a replica that dies leaves its run ``running``
in the store, and cancelling then resuming it finishes it elsewhere, skipping what was scored.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from hanlin.errors import HanlinError
from hanlin.evals.base import EvalStore
from hanlin.evals.runner import Plan, execute

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
        thread.start()
        return live

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
        """At shutdown: every run stops after its current example (left ``interrupted``, to
        be resumed), waited for at most ``timeout`` s in all."""
        with self._mutex:
            running = list(self._live.values())
        for live, _ in running:
            live.stop.set()
        deadline = time.monotonic() + timeout
        for _, thread in running:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _should_stop(self, live: LiveRun) -> bool:
        if live.stop.is_set():
            return True
        now = time.monotonic()
        if now - live._checked >= STATUS_EVERY:
            live._checked = now
            try:
                if self.store.run(live.run_id).status != "running":
                    live.stop.set()  # cancelled on another replica
            except HanlinError:  # the run was deleted, or the store is away: stop
                live.stop.set()
        return live.stop.is_set()

    def _run(self, live: LiveRun, plan: Plan) -> None:
        try:
            execute(self.store, plan, progress=live.progress, stop=lambda: self._should_stop(live))
        except Exception as exc:  # execute left the run `failed`; keep why, for the API
            log.warning("evaluation run %s failed: %s", live.run_id, exc)
            reason = getattr(exc, "message", None) or f"internal error ({type(exc).__name__})"
            try:
                config = self.store.run(live.run_id).config | {"error": reason}
                self.store.update_run(live.run_id, status="failed", config=config)
            except HanlinError:
                log.exception("could not record the failure of run %s", live.run_id)
        finally:
            plan.close()
            with self._mutex:
                self._live.pop(live.run_id, None)
