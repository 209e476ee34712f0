"""Agent runs in flight on the server, and the approvals they wait for.

A run streams its events over SSE; when a tool with side effects needs approval, the stream
carries an ``approval_request`` event and the run waits until the same caller (or an admin)
answers ``POST /v1/agents/runs/{run}/approvals/{call}``, or until the approval timeout passes,
which denies the call. The future a decision resolves is registered *before* the event is sent,
so an answer that arrives at once is never lost.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Literal

from hanlin.access.auth import Principal
from hanlin.agents.events import ApprovalRequest
from hanlin.errors import InvalidInputError, NotFoundError

RunStatus = Literal["running", "done", "failed", "cancelled"]


@dataclass(slots=True)
class AgentRun:
    """One run: who started it, its state, and the approvals it is waiting for."""

    id: str
    agent: str
    owner: str | None
    created: float = field(default_factory=time.time)
    status: RunStatus = "running"
    stop_reason: str | None = None
    pending: dict[str, asyncio.Future[bool]] = field(default_factory=dict)
    requests: dict[str, dict[str, Any]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "agent": self.agent,
            "status": self.status,
            "stop_reason": self.stop_reason,
            "created": self.created,
            "pending_approvals": [self.requests[k] for k in self.pending if k in self.requests],
        }


class AgentRuns:
    """The server's runs (the last ``keep`` finished ones are remembered for status queries)."""

    def __init__(self, approval_timeout: float = 300.0, keep: int = 200) -> None:
        self.approval_timeout = approval_timeout
        self.keep = keep
        self._runs: OrderedDict[str, AgentRun] = OrderedDict()

    def start(self, agent: str, caller: Principal) -> AgentRun:
        run = AgentRun(f"run_{secrets.token_hex(8)}", agent, _owner(caller))
        self._runs[run.id] = run
        self._trim()
        return run

    def get(self, run_id: str, caller: Principal) -> AgentRun:
        run = self._runs.get(run_id)
        if run is None or not _may_see(run, caller):
            raise NotFoundError(
                f"no agent run '{run_id}'",
                hint="the id comes from the run's first SSE event; finished runs are forgotten "
                f"after {self.keep} newer ones",
            )
        return run

    def expect(self, run: AgentRun, request: ApprovalRequest) -> None:
        """Register the decision future for ``request`` before its event goes out."""
        run.pending[request.id] = asyncio.get_running_loop().create_future()
        run.requests[request.id] = {
            "id": request.id,
            "tool": request.tool,
            "arguments": request.arguments,
            "side_effects": sorted(request.side_effects),
        }

    async def wait(self, run: AgentRun, request: ApprovalRequest) -> bool:
        """The approval callback: the caller's answer, or no after the timeout."""
        future = run.pending.get(request.id)
        if future is None:
            self.expect(run, request)
            future = run.pending[request.id]
        try:
            return await asyncio.wait_for(future, self.approval_timeout)
        except TimeoutError:
            return False
        finally:
            run.pending.pop(request.id, None)

    def decide(self, run_id: str, call_id: str, approved: bool, caller: Principal) -> AgentRun:
        run = self.get(run_id, caller)
        future = run.pending.get(call_id)
        if future is None or future.done():
            waiting = ", ".join(run.pending) or "none"
            raise InvalidInputError(
                f"run '{run_id}' is not waiting for an approval of call '{call_id}' "
                f"(waiting: {waiting})",
                hint="answer the id of an approval_request event while the run is still running",
            )
        future.set_result(approved)
        return run

    def finish(self, run: AgentRun, status: RunStatus, stop_reason: str | None) -> None:
        run.status = status
        run.stop_reason = stop_reason
        for future in run.pending.values():
            if not future.done():
                future.cancel()
        run.pending.clear()
        self._trim()

    def _trim(self) -> None:
        finished = [k for k, r in self._runs.items() if r.status != "running"]
        for key in finished[: max(0, len(finished) - self.keep)]:
            del self._runs[key]


def _owner(caller: Principal) -> str | None:
    return caller.key.id if caller.key is not None else None


def _may_see(run: AgentRun, caller: Principal) -> bool:
    return run.owner is None or run.owner == _owner(caller) or caller.can("admin")
