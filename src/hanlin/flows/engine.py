"""The engine: runs a workflow's nodes (walked by :class:`~hanlin.flows.walker.Walker`,
parallel branches at once), checkpointing after each one, and resumes a run from its last
checkpoint after a crash, a pause or a failure.

Guarantees (docs/workflows.md): a node that finished is never run again in the same run (its
outputs are in the checkpoint); a node with side effects (``code``, ``http_request``, ``tool``)
records its result before the run moves on, so one interrupted between its effect's end and the
checkpoint is replayed from the record; finished iteration items, loop rounds and human answers
are recorded the same way. An effect in flight at the moment of a crash is run again on resume,
with the same ``Idempotency-Key``.

Runs belong to whoever started them (``started_by``: the caller's API key id, from
:func:`hanlin.access.caller.current`): starting, resuming, answering and cancelling need the
``workflows`` scope, and a key sees only its own runs unless it is an admin (the local user
sees all). Store calls run on a worker thread, so a run driven on a server's event loop does
not stall it while a checkpoint is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import jsonschema

from hanlin.access.caller import current, require
from hanlin.config import Settings, load_settings
from hanlin.errors import ConflictError, InvalidInputError
from hanlin.flows.base import (
    FormAnswerError,
    GraphSpec,
    RunRecord,
    StepRecord,
    run_not_found,
)
from hanlin.flows.definition import Workflow, load_workflow
from hanlin.flows.events import (
    FlowEvent,
    RunFinishedEvent,
    RunPausedEvent,
    RunStartedEvent,
)
from hanlin.flows.graph import Graph, workflow_outputs
from hanlin.flows.nodes.base import PauseRun, Services
from hanlin.flows.nodes.basic import check_inputs
from hanlin.flows.store import FlowStore, RunInterruptedError, open_flow_store
from hanlin.flows.walker import Emit, Walker, collect, io

_END = object()
#: the owner names of this process's open engines. A run marked by this process's pid under
#: another name was left by an engine since closed, or by an earlier process that had the same
#: pid (a container's pid 1 after a restart): it is stale although the pid is alive.
_OPEN_OWNERS: set[str] = set()


class FlowEngine:
    """Runs workflows durably in the run store of ``settings`` (SQLite in the app directory,
    or PostgreSQL with ``database_url``). One engine per process is enough; it may drive
    several runs at once."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        store: FlowStore | None = None,
        gateway: Any = None,
    ) -> None:
        self.settings = settings or load_settings()
        self.store = store or open_flow_store(self.settings)
        self.services = Services(self.settings, self.store, gateway, self._find_graph)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        _OPEN_OWNERS.add(self.owner)
        #: checked workflows by definition: checking one (templates parsed, graph ordered)
        #: costs more than running a small one, and every run of a workflow stores the same
        self._checked: dict[str, Workflow] = {}

    def _find_graph(self, ref: str) -> GraphSpec:
        return load_workflow(ref, self.settings, check_resources=False).spec

    def close(self) -> None:
        _OPEN_OWNERS.discard(self.owner)
        self.services.close()
        self.store.close()

    # --- runs ------------------------------------------------------------------------------

    def start(
        self,
        workflow: Workflow,
        inputs: dict[str, Any] | None = None,
        *,
        state: dict[str, Any] | None = None,
        parent: str | None = None,
    ) -> RunRecord:
        """Record a new run (status ``pending``) started by the current caller; its inputs are
        checked against the start node here. Drive it with :meth:`astream` / :meth:`stream`.
        Needs the ``workflows`` scope."""
        require("workflows")
        start = next(n for n in workflow.spec.nodes if n.type == "start")
        checked = check_inputs(workflow.graph.configs[start.id], dict(inputs or {}))  # type: ignore[arg-type]
        run = RunRecord(
            id=f"run_{secrets.token_hex(8)}",
            workflow=workflow.name,
            definition=workflow.spec.to_data(),
            inputs=checked,
            status="pending",
            state=state or {},
            parent=parent,
            started_by=current().user,
        )
        return self.store.create_run(run)

    async def astream(self, run_id: str) -> AsyncIterator[FlowEvent]:
        """Drive a run (new, paused, failed or interrupted) from its last checkpoint, yielding
        its events. Raises ConflictError when it is finished or running elsewhere."""
        queue: asyncio.Queue[Any] = asyncio.Queue()

        async def drive() -> None:
            try:
                await self._drive(run_id, queue.put)
            finally:
                await queue.put(_END)

        task = asyncio.create_task(drive())
        try:
            while (event := await queue.get()) is not _END:
                yield event
            await task
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    def stream(self, run_id: str) -> Iterator[FlowEvent]:
        """:meth:`astream` for sync callers (on the gateway's event-loop thread)."""
        return self.services.gateway.iterate_sync(self.astream(run_id))

    def drive(self, run_id: str, on_event: Callable[[FlowEvent], None] | None = None) -> RunRecord:
        """Drive a run to its end or its next pause; the run as stored afterwards."""
        if on_event is None:
            # one hop to the gateway's loop for the whole run, not one per event
            self.services.gateway.run_sync(self._consume(run_id))
        else:
            for event in self.stream(run_id):
                on_event(event)
        return self.store.get_run(run_id)

    async def _consume(self, run_id: str) -> None:
        async for _ in self.astream(run_id):
            pass

    def run(self, workflow: Workflow, inputs: dict[str, Any] | None = None) -> RunRecord:
        """Start a run and drive it (sync)."""
        return self.drive(self.start(workflow, inputs).id)

    def answer(self, run_id: str, data: dict[str, Any]) -> RunRecord:
        """Answer a paused run's form; drive it afterwards. An answer that fails the form's
        schema raises :class:`FormAnswerError` naming the field, and the run stays paused."""
        run = self.get_run(run_id)
        require("workflows")
        if run.status != "paused" or run.pending is None:
            raise ConflictError(
                f"workflow run '{run_id}' is {run.status}, not waiting for input",
                hint="`hanlin workflow runs` shows which runs are paused",
                code="workflow_not_paused",
            )
        problem = _form_problem(run.pending.schema_, data)
        if problem is not None:
            field, message = problem
            raise FormAnswerError(
                f"{field or 'the answer'}: {message}",
                hint=f"answer with JSON matching the form: {run.pending.schema_}",
                param=field,
                params={"run": run_id, "node": run.pending.node, "field": field},
            )
        self.store.record_effect(run_id, f"input:{run.pending.node}", {"value": data})
        return run

    def cancel(self, run_id: str) -> RunRecord:
        """Cancel a run (one running stops at its next checkpoint)."""
        self.get_run(run_id)
        require("workflows")
        return self.store.cancel(run_id)

    def get_run(self, run_id: str) -> RunRecord:
        """A run the current caller may see (its own; any for an admin or the local user);
        another key's run is not found, like one that does not exist."""
        return self._visible(self.store.get_run(run_id))

    def list_runs(
        self,
        workflow: str | None = None,
        status: str | None = None,
        limit: int = 50,
        *,
        offset: int = 0,
    ) -> list[RunRecord]:
        """Runs the current caller may see, newest first."""
        who = current()
        mine = None if who.can("admin") else (who.user or "")
        return self.store.list_runs(workflow, status, limit, offset=offset, started_by=mine)

    def interrupted_runs(self, limit: int = 1000) -> list[RunRecord]:
        """Runs left ``running`` by a process that is gone (or that let go of them): what
        :meth:`astream` would take over."""
        found = self.store.list_runs(status="running", limit=limit)
        return [r for r in found if self._stale(r.owner, r.updated_at)]

    def _visible(self, run: RunRecord) -> RunRecord:
        who = current()
        if who.can("admin") or (who.user is not None and run.started_by == who.user):
            return run
        raise run_not_found(run.id)

    def rerun(self, run_id: str, from_node: str, inputs: dict[str, Any] | None = None) -> RunRecord:
        """A new run of the same definition that keeps the old run's results before
        ``from_node`` and runs it and everything after it again (``inputs`` replace the
        old ones; with them, everything runs again from ``from_node``)."""
        old = self.get_run(run_id)
        workflow = Workflow.from_dict(old.definition)
        graph = workflow.graph
        if from_node not in graph.nodes:
            raise InvalidInputError(
                f"workflow '{old.workflow}' has no node '{from_node}'",
                hint=f"its nodes: {', '.join(graph.order)}",
            )
        redo = {from_node} | graph.descendants(from_node)
        state = {k: v for k, v in old.state.items() if k not in redo}
        new_inputs = old.inputs if inputs is None else {**old.inputs, **inputs}
        start = next(n for n in graph.order if graph.nodes[n].type == "start")
        if inputs is not None:
            state.pop(start, None)
        return self.start(workflow, new_inputs, state=state, parent=run_id)

    def history(self, run_id: str) -> list[StepRecord]:
        """Every node decided in the run, in order (nodes inside bodies included)."""
        self.get_run(run_id)
        return self.store.steps(run_id)

    def state_at(self, run_id: str, seq: int) -> dict[str, Any]:
        """The top-level variables after step ``seq``: node → outputs."""
        state: dict[str, Any] = {}
        for step in self.history(run_id):
            if step.seq > seq:
                break
            if "." not in step.node and "/" not in step.node and step.status != "skipped":
                state[step.node] = step.outputs
        return state

    # --- driving ---------------------------------------------------------------------------

    def _stale(self, owner: str | None, updated_at: float) -> bool:
        """Whether the process that marked a run running is gone."""
        if not owner:
            return True
        host, _, rest = owner.partition(":")
        if host != socket.gethostname():
            return time.time() - updated_at > self.settings.workflows.stale_after_s
        try:
            pid = int(rest.split(":")[0])
        except ValueError:
            return False
        if pid == os.getpid():
            return owner not in _OPEN_OWNERS
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except (PermissionError, ValueError):
            return False
        return False

    async def _drive(self, run_id: str, emit: Emit) -> None:
        try:
            run = await io(self._claim, run_id)
            await self._drive_claimed(run, emit)
        except asyncio.CancelledError:
            # stopped from outside (a server shutting down, a caller's timeout): let go of the
            # run, so a resume here or in the next process continues it at once
            self.store.release(run_id, self.owner)
            raise

    def _claim(self, run_id: str) -> RunRecord:
        """Take a run the caller may see and drive (one hop to a worker thread)."""
        self.get_run(run_id)
        require("workflows")
        return self.store.claim(run_id, self.owner, self._stale)

    def _workflow(self, definition: dict[str, Any]) -> Workflow:
        """The checked form of a stored definition (up to 64 kept; runs on several threads'
        loops may share the engine, so only atomic dict operations here)."""
        key = json.dumps(definition, sort_keys=True, ensure_ascii=False, default=str)
        found = self._checked.get(key)
        if found is None:
            found = Workflow.from_dict(definition)
            if len(self._checked) >= 64:
                self._checked.clear()
            self._checked[key] = found
        return found

    async def _drive_claimed(self, run: RunRecord, emit: Emit) -> None:
        run_id = run.id
        workflow = self._workflow(run.definition)
        bodies: dict[int, Graph] = {}
        collect(workflow.graph, bodies)
        await emit(RunStartedEvent(run_id, run.workflow, resumed=bool(run.state)))
        state = dict(run.state)
        walker = Walker(
            self.store, self.owner, self.services, run, emit, bodies,
            max_parallel=self.settings.workflows.max_parallel,
        )  # fmt: skip
        try:
            try:
                scope = await walker.walk(workflow.graph, "", {}, state, run.inputs, top=True)
            except PauseRun as pause:
                await walker.flush()
                await io(self.store.finish, run_id, self.owner, "paused", pending=pause.pending)
                await emit(RunPausedEvent(run_id, pause.pending))
                return
            outputs = workflow_outputs(workflow.graph, scope)
            await walker.finish(outputs)
        except RunInterruptedError as exc:
            now = await io(self.store.get_run, run_id)
            await emit(RunFinishedEvent(run_id, now.status, error=exc.message))
            return
        except Exception as exc:
            message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            await io(self.store.finish, run_id, self.owner, "failed", error=message)
            await emit(RunFinishedEvent(run_id, "failed", error=message))
            return
        await emit(RunFinishedEvent(run_id, "done", outputs=outputs))


def _form_problem(schema: dict[str, Any], data: Any) -> tuple[str | None, str] | None:
    """``(field, message)`` of what is wrong with an answer to a form (None: it fits); the
    field is the answer's key at fault (a missing required one, an unexpected one), dotted
    for nested ones."""
    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is None:
        return None
    path = [str(p) for p in error.absolute_path]
    instance = error.instance
    if isinstance(instance, dict) and error.validator == "required":
        path += [str(f) for f in error.validator_value if f not in instance][:1]
    elif isinstance(instance, dict) and error.validator == "additionalProperties":
        known = error.schema.get("properties") or {} if isinstance(error.schema, dict) else {}
        path += [str(k) for k in instance if k not in known][:1]
    return (".".join(path) or None), error.message


__all__ = ["FlowEngine"]
