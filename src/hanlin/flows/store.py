"""Where runs live: the :class:`FlowStore` protocol and :func:`open_flow_store` — the app
directory's ``workflows.sqlite``, or PostgreSQL with ``database_url`` (migrations 60–62); both
share the SQL of :mod:`hanlin.flows.sql`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from hanlin.config import Settings
from hanlin.flows.base import (
    PendingInput,
    RunInterruptedError,
    RunRecord,
    ScheduleFire,
    StepRecord,
)

__all__ = ["FlowStore", "RunInterruptedError", "open_flow_store"]


class FlowStore(Protocol):
    """Runs, their steps, their recorded effects and the fires of schedule triggers (see
    :class:`SqlFlowStore`)."""

    def create_run(self, run: RunRecord) -> RunRecord: ...
    def get_run(self, run_id: str) -> RunRecord: ...
    def list_runs(
        self,
        workflow: str | None = None,
        status: str | None = None,
        limit: int = 50,
        *,
        offset: int = 0,
        started_by: str | None = None,
    ) -> list[RunRecord]: ...
    def claim(
        self, run_id: str, owner: str, stale: Callable[[str | None, float], bool]
    ) -> RunRecord: ...
    def checkpoint(
        self,
        run_id: str,
        owner: str,
        step: StepRecord | list[StepRecord],
        state: dict[str, Any] | None,
        effect: tuple[str, dict[str, Any]] | None = None,
        *,
        done: dict[str, Any] | None = None,
    ) -> int: ...
    def finish(
        self,
        run_id: str,
        owner: str,
        status: str,
        *,
        outputs: dict[str, Any] | None = None,
        error: str | None = None,
        pending: PendingInput | None = None,
    ) -> RunRecord: ...
    def release(self, run_id: str, owner: str) -> None: ...
    def cancel(self, run_id: str) -> RunRecord: ...
    def steps(self, run_id: str) -> list[StepRecord]: ...
    def get_effect(self, run_id: str, key: str) -> dict[str, Any] | None: ...
    def record_effect(self, run_id: str, key: str, value: dict[str, Any]) -> None: ...
    def last_fire(self, workflow: str, trigger: str) -> ScheduleFire | None: ...
    def claim_fire(
        self,
        workflow: str,
        trigger: str,
        scheduled_at: float,
        outcome: str,
        run: RunRecord | None = None,
    ) -> bool: ...
    def close(self) -> None: ...


def open_flow_store(settings: Settings) -> FlowStore:
    """The run store of these settings (cheap: opens on first use)."""
    if settings.database_url:
        from hanlin.flows.postgres import PostgresFlowStore

        return PostgresFlowStore(settings.database_url)
    from hanlin.flows.sqlite import SqliteFlowStore

    return SqliteFlowStore(
        settings.home / "workflows.sqlite", synchronous=settings.workflows.sqlite_synchronous
    )
