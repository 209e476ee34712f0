"""The server's workflow runs: one :class:`~hanlin.flows.FlowEngine` on the app's gateway, its
runs driven in the background (a client that leaves does not stop a run), and, when the server
starts, the runs a stopped or crashed process left running resumed as the keys that started
them (``workflows.resume_on_start``, ``workflows.resume_concurrency`` at a time); the
workflows' schedule triggers fire while it runs (``workflows.schedules``)."""

from __future__ import annotations

import asyncio
import logging

from hanlin.access.auth import Authenticator
from hanlin.access.caller import LOCAL, Access, acting_as
from hanlin.config import Settings
from hanlin.flows import FlowEngine, RunRecord
from hanlin.flows.background import BackgroundRuns
from hanlin.flows.schedule import Scheduler
from hanlin.models.gateway import Gateway

log = logging.getLogger("hanlin.server")


class WorkflowRuns:
    """What the workflow routes, ``workflow:`` models and the lifespan share."""

    def __init__(self, settings: Settings, gateway: Gateway, auth: Authenticator) -> None:
        self.settings = settings
        self.engine = FlowEngine(settings, gateway=gateway)
        self.background = BackgroundRuns(self.engine)
        self.auth = auth
        self._resuming: asyncio.Task[None] | None = None
        self._scheduling: asyncio.Task[None] | None = None
        self.scheduler = Scheduler(settings, self.engine.store)

    def start(self) -> None:
        """Begin resuming interrupted runs and firing schedules in the background (called
        once the app runs)."""
        if self.settings.workflows.resume_on_start:
            self._resuming = asyncio.create_task(self._resume(), name="resume workflow runs")
        if self.settings.workflows.schedules:
            self._scheduling = asyncio.create_task(
                self.scheduler.serve(self._drive_scheduled), name="workflow schedules"
            )

    async def _drive_scheduled(self, run_id: str) -> None:
        with acting_as(LOCAL):  # a scheduled run is the server's own, like a CLI run
            await self.background.drive(run_id)

    async def _resume(self) -> None:
        try:
            await self.background.resume_interrupted(
                self._access_of, self.settings.workflows.resume_concurrency
            )
        except Exception:  # a database that is down must not take the server with it
            log.exception("could not resume the interrupted workflow runs")

    def _access_of(self, run: RunRecord) -> Access | None:
        """Who a resumed run acts as: the key that started it (None when that key is gone or
        revoked); the local user without keys, or for a run the CLI started."""
        if not self.auth.required or run.started_by is None:
            return LOCAL
        key = next((k for k in self.auth.store.records() if k.id == run.started_by), None)
        return key.access() if key is not None and key.active else None

    async def resumed(self) -> None:
        """Wait until the runs found at start have been resumed (tests, shutdown)."""
        if self._resuming is not None:
            await asyncio.wait({self._resuming})

    async def aclose(self) -> None:
        for task in (self._resuming, self._scheduling):
            if task is not None:
                task.cancel()
        await self.background.aclose()
        await asyncio.to_thread(self.engine.close)


__all__ = ["WorkflowRuns"]
