"""The engine: runs a workflow's nodes in order, checkpointing after each one, and resumes a run
from its last checkpoint after a crash, a pause or a failure.

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
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, ParamSpec, TypeVar

import jsonschema

from hanlin.access.caller import current, require
from hanlin.config import Settings, load_settings
from hanlin.errors import ConflictError, HanlinError, InvalidInputError, StepError
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
    NodeFinishedEvent,
    NodeRetryEvent,
    NodeStartedEvent,
    RunFinishedEvent,
    RunPausedEvent,
    RunStartedEvent,
)
from hanlin.flows.graph import Graph, check_workflow, workflow_outputs
from hanlin.flows.nodes.base import NodeContext, PauseRun, Services
from hanlin.flows.nodes.basic import check_inputs
from hanlin.flows.store import FlowStore, RunInterruptedError, open_flow_store

Emit = Callable[[FlowEvent], Awaitable[None]]
_END = object()
P = ParamSpec("P")
T = TypeVar("T")
#: the owner names of this process's open engines. A run marked by this process's pid under
#: another name was left by an engine since closed, or by an earlier process that had the same
#: pid (a container's pid 1 after a restart): it is stale although the pid is alive.
_OPEN_OWNERS: set[str] = set()


async def _io(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """A store call on a worker thread (the caller's context goes with it)."""
    return await asyncio.to_thread(fn, *args, **kwargs)


def _join(prefix: str, node: str) -> str:
    if not prefix or prefix.endswith("/"):
        return prefix + node
    return f"{prefix}.{node}"


def _describe(exc: BaseException, timeout: float | None) -> str:
    if isinstance(exc, TimeoutError):
        return f"timed out after {timeout:g} s"
    return getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"


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
        await _io(self.get_run, run_id)
        require("workflows")
        try:
            run = await _io(self.store.claim, run_id, self.owner, self._stale)
            await self._drive_claimed(run, emit)
        except asyncio.CancelledError:
            # stopped from outside (a server shutting down, a caller's timeout): let go of the
            # run, so a resume here or in the next process continues it at once
            self.store.release(run_id, self.owner)
            raise

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
        _collect(workflow.graph, bodies)
        await emit(RunStartedEvent(run_id, run.workflow, resumed=bool(run.state)))
        state = dict(run.state)
        try:
            scope = await self._walk(
                workflow.graph, run, "", {}, state, run.inputs, emit, bodies, top=True
            )
        except PauseRun as pause:
            await _io(self.store.finish, run_id, self.owner, "paused", pending=pause.pending)
            await emit(RunPausedEvent(run_id, pause.pending))
            return
        except RunInterruptedError as exc:
            now = await _io(self.store.get_run, run_id)
            await emit(RunFinishedEvent(run_id, now.status, error=exc.message))
            return
        except Exception as exc:
            message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            await _io(self.store.finish, run_id, self.owner, "failed", error=message)
            await emit(RunFinishedEvent(run_id, "failed", error=message))
            return
        outputs = workflow_outputs(workflow.graph, scope)
        await _io(self.store.finish, run_id, self.owner, "done", outputs=outputs)
        await emit(RunFinishedEvent(run_id, "done", outputs=outputs))

    async def _walk(
        self,
        graph: Graph,
        run: RunRecord,
        prefix: str,
        scope: dict[str, Any],
        state: dict[str, Any],
        inputs: dict[str, Any],
        emit: Emit,
        bodies: dict[int, Graph],
        *,
        top: bool = False,
    ) -> dict[str, Any]:
        """Run a graph's undecided nodes in order; returns the scope (node → outputs)."""
        for name, decided in state.items():
            if decided["status"] != "skipped":
                scope[name] = decided["outputs"]

        async def run_body(
            spec: GraphSpec, inner: dict[str, Any], where: str, given: dict[str, Any]
        ) -> dict[str, Any]:
            body = bodies.get(id(spec))
            if body is None:  # a sub-workflow
                body = check_workflow(spec, getattr(spec, "name", where))
                _collect(body, bodies)
            return await self._walk(body, run, where, dict(inner), {}, given, emit, bodies)

        for node_id in graph.order:
            if node_id in state:
                continue
            node = graph.nodes[node_id]
            path = _join(prefix, node_id)
            now = time.time()
            if not _reached(graph, node_id, state):
                state[node_id] = {"status": "skipped", "outputs": {}, "branch": None}
                step = StepRecord(
                    node=path, type=node.type, status="skipped", started_at=now, finished_at=now
                )
                await _io(self.store.checkpoint, run.id, self.owner, step, state if top else None)
                await emit(NodeFinishedEvent(path, node.type, "skipped", {}))
                continue
            ctx = NodeContext(
                run.id, path, node, dict(scope), self.services, emit, run_body, {"inputs": inputs}
            )
            decided, step = await self._execute(graph, node_id, ctx, run.workflow)
            state[node_id] = decided
            scope[node_id] = decided["outputs"]
            await _io(self.store.checkpoint, run.id, self.owner, step, state if top else None)
        return scope

    async def _execute(
        self, graph: Graph, node_id: str, ctx: NodeContext, workflow: str
    ) -> tuple[dict[str, Any], StepRecord]:
        """One node with its timeout, retries and error strategy."""
        node, kind, config = graph.nodes[node_id], graph.types[node_id], graph.configs[node_id]
        path, started = ctx.path, time.time()
        key = f"node:{path}"
        found = await _io(self.store.get_effect, ctx.run_id, key) if kind.side_effects else None
        if found is not None:
            outputs, branch = found["outputs"], found["branch"]
            await ctx.emit(NodeFinishedEvent(path, node.type, "replayed", outputs, 0.0, branch))
            step = StepRecord(
                node=path, type=node.type, status="replayed", outputs=found["outputs"],
                branch=found["branch"], started_at=started, finished_at=time.time(),
            )  # fmt: skip
            return {"status": "done", **found}, step
        attempt = 0
        while True:
            attempt += 1
            await ctx.emit(NodeStartedEvent(path, node.type, attempt))
            try:
                work = kind.run(ctx, config)
                out = await (asyncio.wait_for(work, node.timeout_s) if node.timeout_s else work)
                break
            except (PauseRun, RunInterruptedError):
                raise
            except Exception as exc:
                error = _describe(exc, node.timeout_s)
                if attempt < node.retry.max_attempts:
                    wait = node.retry.wait(attempt)
                    await ctx.emit(NodeRetryEvent(path, attempt, error, wait))
                    await asyncio.sleep(wait)
                    continue
                return await self._failed(
                    ctx, node_id, graph, exc, error, attempt, started, workflow
                )
        if kind.side_effects:
            effect = {"outputs": out.outputs, "branch": out.branch}
            await _io(self.store.record_effect, ctx.run_id, key, effect)
        seconds = time.time() - started
        await ctx.emit(NodeFinishedEvent(path, node.type, "done", out.outputs, seconds, out.branch))
        step = StepRecord(
            node=path, type=node.type, status="done", outputs=out.outputs, branch=out.branch,
            attempts=attempt, started_at=started, finished_at=time.time(),
        )  # fmt: skip
        return {"status": "done", "outputs": out.outputs, "branch": out.branch}, step

    async def _failed(
        self,
        ctx: NodeContext,
        node_id: str,
        graph: Graph,
        exc: Exception,
        error: str,
        attempts: int,
        started: float,
        workflow: str,
    ) -> tuple[dict[str, Any], StepRecord]:
        node = graph.nodes[node_id]
        seconds = time.time() - started
        outputs: dict[str, Any] = {}
        branch = None
        if node.on_error == "default":
            outputs = dict(node.default or {})
        elif node.on_error == "branch":
            outputs, branch = {"error": error}, "error"
        await ctx.emit(
            NodeFinishedEvent(ctx.path, node.type, "failed", outputs, seconds, branch, error)
        )
        step = StepRecord(
            node=ctx.path, type=node.type, status="failed", outputs=outputs, branch=branch,
            error=error, attempts=attempts, started_at=started, finished_at=time.time(),
        )  # fmt: skip
        if node.on_error == "fail":
            await _io(self.store.checkpoint, ctx.run_id, self.owner, step, None)
            if isinstance(exc, StepError):
                raise exc
            if isinstance(exc, TimeoutError):
                exc = HanlinError(error, hint="raise the node's timeout_s, or add retries")
            raise StepError(f"workflow '{workflow}'", ctx.path, exc) from exc
        decided = {"status": "failed", "outputs": outputs, "branch": branch, "error": error}
        return decided, step


def _reached(graph: Graph, node_id: str, state: dict[str, Any]) -> bool:
    """A node runs when it has no incoming edge (the start, a body's first nodes) or one of
    its incoming edges was taken: its source ran and left by that edge's branch."""
    incoming = graph.incoming[node_id]
    if not incoming:
        return True
    for edge in incoming:
        source = state.get(edge.source)
        if source and source["status"] != "skipped" and source.get("branch") == edge.handle:
            return True
    return False


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


def _collect(graph: Graph, found: dict[int, Graph]) -> None:
    for key, body in graph.bodies.items():
        found[key] = body
        _collect(body, found)


__all__ = ["FlowEngine"]
