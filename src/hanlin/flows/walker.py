"""Walking one run's graphs: the nodes whose inputs are decided run — several at once where
branches fork (at most ``workflows.max_parallel`` per graph) — each with its timeout, retries
and error strategy, and each checkpointed before the nodes after it start.

A node starts once every node with an edge into it is decided (done, failed or skipped), and
runs when one of those edges was taken (a join waits for all its live branches; a branch not
taken is skipped). Checkpoints of one run are written one at a time, each with the state of
the nodes checkpointed before it plus its own, so the stored state never holds a node whose
step is not stored, and a resumed run starts exactly the nodes not yet checkpointed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from hanlin.errors import HanlinError, StepError
from hanlin.flows.base import GraphSpec, RunRecord, StepRecord
from hanlin.flows.events import FlowEvent, NodeFinishedEvent, NodeRetryEvent, NodeStartedEvent
from hanlin.flows.graph import Graph, check_workflow
from hanlin.flows.nodes.base import NodeContext, PauseRun, Services
from hanlin.flows.store import FlowStore, RunInterruptedError

Emit = Callable[[FlowEvent], Awaitable[None]]
SKIPPED: dict[str, Any] = {"status": "skipped", "outputs": {}, "branch": None}
P = ParamSpec("P")
T = TypeVar("T")


async def io(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """A store call on a worker thread (the caller's context goes with it)."""
    return await asyncio.to_thread(fn, *args, **kwargs)


def collect(graph: Graph, found: dict[int, Graph]) -> None:
    """Every body graph inside ``graph``, by the id of its spec."""
    for key, body in graph.bodies.items():
        found[key] = body
        collect(body, found)


class Walker:
    """Drives the graphs of one run for one owner (see the module's docstring)."""

    def __init__(
        self,
        store: FlowStore,
        owner: str,
        services: Services,
        run: RunRecord,
        emit: Emit,
        bodies: dict[int, Graph],
        *,
        max_parallel: int,
    ) -> None:
        self.store, self.owner, self.services = store, owner, services
        self.run, self.emit, self.bodies = run, emit, bodies
        self.max_parallel = max_parallel
        #: steps of replayable top-level nodes, written with the next checkpoint
        self.deferred: list[StepRecord] = []
        self.state: dict[str, Any] = {}  # the top-level state

    async def _write(
        self,
        step: StepRecord | None,
        effect: tuple[str, dict[str, Any]] | None = None,
        *,
        top: bool = True,
        done: dict[str, Any] | None = None,
    ) -> None:
        """One checkpoint: the deferred steps, then ``step``; the top-level state with them
        when ``top`` or when there are deferred steps (their nodes are in it)."""
        snapshot = dict(self.state) if top or self.deferred else None
        steps, self.deferred = self.deferred + ([step] if step else []), []
        if not steps and done is None:
            return
        await io(self.store.checkpoint, self.run.id, self.owner, steps, snapshot, effect, done=done)

    async def flush(self) -> None:
        """Write the deferred steps (before the run pauses)."""
        await self._write(None)

    async def finish(self, outputs: dict[str, Any]) -> None:
        """End the run ``done``, in the deferred steps' transaction when there are some."""
        if self.deferred:
            await self._write(None, done=outputs)
        else:
            await io(self.store.finish, self.run.id, self.owner, "done", outputs=outputs)

    async def walk(
        self,
        graph: Graph,
        prefix: str,
        scope: dict[str, Any],
        state: dict[str, Any],
        inputs: dict[str, Any],
        *,
        top: bool = False,
    ) -> dict[str, Any]:
        """Run a graph's undecided nodes; returns the scope (node → outputs). The first
        failure (or pause) is raised once the nodes already running have been checkpointed."""
        for name, decided in state.items():
            if decided["status"] != "skipped":
                scope[name] = decided["outputs"]
        if top:
            self.state = state
        commit = asyncio.Lock()  # one checkpoint of this graph at a time (see the docstring)
        waiting = [n for n in graph.order if n not in state]
        running: dict[asyncio.Task[None], str] = {}
        failure: BaseException | None = None

        async def node(node_id: str) -> None:
            ctx = NodeContext(
                self.run.id, _join(prefix, node_id), graph.nodes[node_id], dict(scope),
                self.services, self.emit, self._run_body, {"inputs": inputs},
            )  # fmt: skip
            decided, step, effect = await self._execute(graph, node_id, ctx)
            await decide(node_id, decided, step, effect)

        async def decide(
            node_id: str, decided: dict[str, Any], step: StepRecord, effect: Any = None
        ) -> None:
            async with commit:
                state[node_id] = decided
                if decided["status"] != "skipped":
                    scope[node_id] = decided["outputs"]
                replayable = graph.types[node_id].replayable or decided["status"] == "skipped"
                if top and replayable and effect is None and decided["status"] != "failed":
                    self.deferred.append(step)
                else:
                    await self._write(step, effect, top=top)

        try:
            while True:
                ready: list[str] = []
                if failure is None:
                    for node_id in list(waiting):
                        if len(running) + len(ready) >= self.max_parallel:
                            break
                        if any(e.source not in state for e in graph.incoming[node_id]):
                            continue
                        waiting.remove(node_id)
                        if _reached(graph, node_id, state):
                            ready.append(node_id)
                            continue
                        now, path = time.time(), _join(prefix, node_id)
                        kind = graph.nodes[node_id].type
                        step = StepRecord(
                            node=path, type=kind, status="skipped", started_at=now, finished_at=now
                        )
                        await decide(node_id, dict(SKIPPED), step)
                        await self.emit(NodeFinishedEvent(path, kind, "skipped", {}))
                if len(ready) == 1 and not running:
                    await node(ready[0])  # a chain: no task needed
                    continue
                for node_id in ready:
                    running[asyncio.create_task(node(node_id))] = node_id
                if not running:
                    break
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    del running[task]
                    exc = task.exception()
                    if exc is not None and failure is None:
                        failure = exc
        finally:
            for task in running:
                task.cancel()
            for task in running:
                with contextlib.suppress(BaseException):
                    await task
        if failure is not None:
            raise failure
        if waiting:  # only when a node's inputs can never be decided: a bug, not a user's error
            raise RuntimeError(f"nodes never became ready: {', '.join(waiting)}")
        return scope

    async def _run_body(
        self, spec: GraphSpec, inner: dict[str, Any], where: str, given: dict[str, Any]
    ) -> dict[str, Any]:
        body = self.bodies.get(id(spec))
        if body is None:  # a sub-workflow
            body = check_workflow(spec, getattr(spec, "name", where))
            collect(body, self.bodies)
        return await self.walk(body, where, dict(inner), {}, given)

    async def _execute(
        self, graph: Graph, node_id: str, ctx: NodeContext
    ) -> tuple[dict[str, Any], StepRecord, tuple[str, dict[str, Any]] | None]:
        """One node with its timeout, retries and error strategy: its decided state, its step
        and, for a node with side effects, the result to record with the checkpoint."""
        node, kind, config = graph.nodes[node_id], graph.types[node_id], graph.configs[node_id]
        path, started = ctx.path, time.time()
        key = f"node:{path}"
        found = await io(self.store.get_effect, ctx.run_id, key) if kind.side_effects else None
        if found is not None:
            outputs, branch = found["outputs"], found["branch"]
            await ctx.emit(NodeFinishedEvent(path, node.type, "replayed", outputs, 0.0, branch))
            step = StepRecord(
                node=path, type=node.type, status="replayed", outputs=found["outputs"],
                branch=found["branch"], started_at=started, finished_at=time.time(),
            )  # fmt: skip
            return {"status": "done", **found}, step, None
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
                failed = await self._failed(ctx, node_id, graph, exc, error, attempt, started)
                return (*failed, None)
        # recorded in the step's checkpoint transaction, before any later node starts
        effect = None
        if kind.side_effects:
            effect = (key, {"outputs": out.outputs, "branch": out.branch})
        seconds = time.time() - started
        await ctx.emit(NodeFinishedEvent(path, node.type, "done", out.outputs, seconds, out.branch))
        step = StepRecord(
            node=path, type=node.type, status="done", outputs=out.outputs, branch=out.branch,
            attempts=attempt, started_at=started, finished_at=time.time(),
        )  # fmt: skip
        return {"status": "done", "outputs": out.outputs, "branch": out.branch}, step, effect

    async def _failed(
        self,
        ctx: NodeContext,
        node_id: str,
        graph: Graph,
        exc: Exception,
        error: str,
        attempts: int,
        started: float,
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
            await self._write(step, top=False)
            if isinstance(exc, StepError):
                raise exc
            if isinstance(exc, TimeoutError):
                exc = HanlinError(error, hint="raise the node's timeout_s, or add retries")
            raise StepError(f"workflow '{self.run.workflow}'", ctx.path, exc) from exc
        decided = {"status": "failed", "outputs": outputs, "branch": branch, "error": error}
        return decided, step


def _join(prefix: str, node: str) -> str:
    if not prefix or prefix.endswith("/"):
        return prefix + node
    return f"{prefix}.{node}"


def _describe(exc: BaseException, timeout: float | None) -> str:
    if isinstance(exc, TimeoutError):
        return f"timed out after {timeout:g} s"
    return getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"


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


__all__ = ["Walker", "collect", "io"]
