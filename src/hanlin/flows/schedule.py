"""Schedule (cron) triggers: a workflow's ``triggers: [{schedule: "*/5 * * * *"}]`` started
by :class:`Scheduler` while ``hanlin serve`` (or ``hanlin worker`` on PostgreSQL) runs.

Cron expressions are read by croniter (maintained by pallets-eco): five fields, or six with
seconds first, in the trigger's IANA ``timezone``. Each fire is claimed in the run store under
the key (workflow, trigger, scheduled time), in the transaction that creates its run, so two
schedulers on one store never both start it and a restart neither repeats nor loses it. A
trigger first seen is *armed* (nothing runs for times before it existed); after a downtime the
``latest`` catch-up policy runs the most recent missed fire once, ``skip`` runs none.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from hanlin.flows.base import RunRecord, ScheduleFire, TriggerSpec
from hanlin.flows.triggers import latest_fire, missed_between, next_fire

if TYPE_CHECKING:
    from hanlin.config import Settings
    from hanlin.flows.definition import Workflow
    from hanlin.flows.store import FlowStore

log = logging.getLogger("hanlin.flows")

#: a ``skip`` trigger still fires when the scheduler is at most this late
GRACE_S = 60.0
#: the longest a scheduler sleeps between looks (new or edited workflow files are seen then)
RESCAN_S = 30.0


class Scheduler:
    """Starts the scheduled runs of the workflows in ``HANLIN_HOME/workflows/``.

    :meth:`tick` claims what is due at one moment (a clock is injected, so tests need not
    wait); :meth:`serve` ticks until stopped, sleeping until the next fire, and hands each new
    run to ``drive``. Any number of schedulers may share one store.
    """

    def __init__(
        self,
        settings: Settings,
        store: FlowStore,
        *,
        clock: Callable[[], float] = time.time,
        workflows: Callable[[], list[Workflow]] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self._workflows = workflows or self._load

    def _load(self) -> list[Workflow]:
        from hanlin.flows.definition import list_workflows, load_workflow

        found = []
        for path in list_workflows(self.settings):
            try:
                found.append(load_workflow(str(path), self.settings, check_resources=False))
            except Exception:  # an invalid file is reported by `workflow ls`, not here
                continue
        return [wf for wf in found if wf.spec.triggers]

    def tick(self, now: float | None = None) -> list[RunRecord]:
        """Claim every fire due at ``now``; returns the runs created (status ``running``
        without an owner: a process that dies before driving one leaves it to be resumed)."""
        now = self.clock() if now is None else now
        started = []
        for workflow in self._workflows():
            for trigger in workflow.spec.triggers:
                try:
                    run = self._fire(workflow, trigger, now)
                except Exception:
                    log.exception("schedule %r of workflow %s", trigger.key, workflow.name)
                    continue
                if run is not None:
                    started.append(run)
        return started

    def _fire(self, workflow: Workflow, trigger: TriggerSpec, now: float) -> RunRecord | None:
        last = self.store.last_fire(workflow.name, trigger.key)
        if last is None:
            self.store.claim_fire(workflow.name, trigger.key, now, "armed")
            return None
        due = latest_fire(trigger, now)
        if due <= last.scheduled_at:
            return None
        missed = missed_between(trigger, last.scheduled_at, due)
        if trigger.catch_up == "skip" and now - due > GRACE_S:
            if self.store.claim_fire(workflow.name, trigger.key, due, "skipped"):
                log.info("schedule %r of %s: skipped %d missed fire(s)", trigger.key,
                         workflow.name, missed + 1)  # fmt: skip
            return None
        run = self._new_run(workflow, trigger)
        if not self.store.claim_fire(workflow.name, trigger.key, due, "fired", run):
            return None  # another scheduler fired it
        if missed:
            log.info("schedule %r of %s: %d missed fire(s) not run (catch_up: latest)",
                     trigger.key, workflow.name, missed)  # fmt: skip
        log.info("schedule %r started run %s of %s", trigger.key, run.id, workflow.name)
        return run

    def _new_run(self, workflow: Workflow, trigger: TriggerSpec) -> RunRecord:
        from hanlin.flows.nodes.basic import check_inputs

        start = next(n for n in workflow.spec.nodes if n.type == "start")
        inputs = check_inputs(workflow.graph.configs[start.id], dict(trigger.inputs))  # type: ignore[arg-type]
        return RunRecord(
            id=f"run_{secrets.token_hex(8)}",
            workflow=workflow.name,
            definition=workflow.spec.to_data(),
            inputs=inputs,
            status="running",  # ownerless: whoever drives or resumes it claims it
            started_by=None,  # the local user: the server itself started it
        )

    def next_wake(self, now: float) -> float:
        """When the next fire of any trigger is due (at most :data:`RESCAN_S` away)."""
        wake = now + RESCAN_S
        for workflow in self._workflows():
            for trigger in workflow.spec.triggers:
                try:
                    wake = min(wake, next_fire(trigger, now))
                except Exception:
                    continue
        return wake

    async def serve(
        self, drive: Callable[[str], Awaitable[Any]], stop: asyncio.Event | None = None
    ) -> None:
        """Tick until ``stop`` is set (or the task is cancelled), driving each new run."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                runs = await asyncio.to_thread(self.tick)
                for run in runs:
                    try:
                        await drive(run.id)
                    except Exception:
                        log.exception("could not start scheduled run %s", run.id)
                wake = await asyncio.to_thread(self.next_wake, self.clock())
            except Exception:  # a database that is down must not end the schedules
                log.exception("workflow schedules")
                wake = self.clock() + RESCAN_S
            delay = max(0.0, wake - self.clock()) + 0.005
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)


def schedules_in_thread(settings: Settings) -> threading.Thread:
    """Fire schedules from a daemon thread of this process (``hanlin worker``): its runs are
    driven there, and one cut short by the process's exit is resumed by the next server."""
    from hanlin.flows.background import BackgroundRuns
    from hanlin.flows.engine import FlowEngine

    async def serve() -> None:
        runs = BackgroundRuns(FlowEngine(settings))

        async def drive(run_id: str) -> None:
            await runs.drive(run_id)

        try:
            await Scheduler(settings, runs.engine.store).serve(drive)
        finally:
            await runs.aclose()

    thread = threading.Thread(
        target=asyncio.run, args=(serve(),), name="workflow schedules", daemon=True
    )
    thread.start()
    return thread


def schedule_rows(workflow: Workflow, store: FlowStore | None, now: float) -> list[dict[str, Any]]:
    """Each trigger of ``workflow`` with its next fire (and, given a store, its last one), for
    the surfaces (``hanlin workflow show``)."""
    rows = []
    for trigger in workflow.spec.triggers:
        last: ScheduleFire | None = store.last_fire(workflow.name, trigger.key) if store else None
        when = datetime.fromtimestamp(next_fire(trigger, now), ZoneInfo(trigger.timezone))
        rows.append(
            {
                "trigger": trigger.key,
                "schedule": trigger.schedule,
                "timezone": trigger.timezone,
                "next_fire": when.isoformat(),
                "last_fire": None if last is None else _iso(last.scheduled_at, trigger),
                "last_outcome": None if last is None else last.outcome,
                "last_run": None if last is None else last.run_id,
                "inputs": trigger.inputs,
            }
        )
    return rows


def _iso(at: float, trigger: TriggerSpec) -> str:
    return datetime.fromtimestamp(at, ZoneInfo(trigger.timezone)).isoformat()


__all__ = [
    "GRACE_S",
    "Scheduler",
    "schedule_rows",
    "schedules_in_thread",
]
