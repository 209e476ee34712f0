"""Workflows as MCP tools: each valid workflow in ``HANLIN_HOME/workflows/`` is a tool
``workflow_<name>`` whose input schema is its start node's inputs, listed afresh on every
``tools/list`` (a workflow added or fixed appears without a restart). A call starts a run as the
caller and answers with the run's answer; a run that pauses for a person answers with its run
id and how to answer its form; a failed run is an error result. A run that outlasts the tool's
time limit goes on in the background and the result says how to follow it."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any

import mcp_types as mt

from hanlin.config import Settings
from hanlin.flows import FlowEngine, RunRecord
from hanlin.flows.background import BackgroundRuns
from hanlin.flows.base import RunFailedError
from hanlin.flows.catalog import catalog, input_schema, named_workflow, reply_text

PREFIX = "workflow_"


@dataclass(slots=True)
class WorkflowTool:
    """One workflow as a tool: its MCP definition and the workflow it runs."""

    spec: mt.Tool
    workflow: str


def tool_name(workflow: str) -> str:
    """``workflow_<name>`` with characters outside ``[A-Za-z0-9_-]`` as ``_`` (64 at most)."""
    return (PREFIX + re.sub(r"[^A-Za-z0-9_-]", "_", workflow))[:64]


class WorkflowTools:
    """The workflow tools of one MCP server; runs are driven by an engine made on first use."""

    def __init__(self, settings: Settings, timeout: float = 3600.0) -> None:
        self.settings = settings
        #: seconds a call waits for its run; then the run goes on without it
        self.timeout = timeout
        self._runs: BackgroundRuns | None = None

    def _background(self) -> BackgroundRuns:
        if self._runs is None:
            self._runs = BackgroundRuns(FlowEngine(self.settings))
        return self._runs

    async def tools(self) -> dict[str, WorkflowTool]:
        """The tools by name, one per valid workflow (a name taken twice keeps the first)."""
        found: dict[str, WorkflowTool] = {}
        for info in await asyncio.to_thread(catalog, self.settings):
            if info.workflow is None:
                continue
            name = tool_name(info.name)
            if name in found:
                continue
            about = info.description or f"Run the workflow '{info.name}'."
            spec = mt.Tool(
                name=name,
                description=f"{about} Returns the workflow's answer; a run that pauses for a "
                "person returns its run id and how to answer its form.",
                input_schema=input_schema(info.workflow),
                # a workflow may call models, HTTP APIs and tools: side effects, open world
                annotations=mt.ToolAnnotations(
                    read_only_hint=False, destructive_hint=False, open_world_hint=True
                ),
            )
            found[name] = WorkflowTool(spec, info.name)
        return found

    async def call(self, workflow: str, args: dict[str, Any]) -> str:
        """Run ``workflow`` with ``args`` as its inputs, as the current caller."""
        runs = self._background()
        wf = await asyncio.to_thread(named_workflow, workflow, self.settings)
        started = await asyncio.to_thread(runs.engine.start, wf, args)
        follower = await runs.drive(started.id)
        try:
            await asyncio.wait_for(follower.last(), self.timeout)
        except TimeoutError:
            return (
                f"workflow '{workflow}' is still running after {self.timeout:g} s (run "
                f"{started.id}); it goes on: see `hanlin workflow runs` or GET "
                f"/v1/workflows/runs/{started.id} on `hanlin serve`"
            )
        run = await asyncio.to_thread(runs.engine.get_run, started.id)
        if run.status == "done":
            return reply_text(run)
        if run.status == "paused":
            return _paused(run)
        raise RunFailedError(
            f"workflow '{workflow}' run {run.id} {run.status}: {run.error or ''}",
            hint=f"fix the cause, then `hanlin workflow resume {run.id}`",
        )

    async def aclose(self) -> None:
        if self._runs is not None:
            await self._runs.aclose()
            await asyncio.to_thread(self._runs.engine.close)
            self._runs = None


def _paused(run: RunRecord) -> str:
    pending = run.pending
    assert pending is not None
    return json.dumps(
        {
            "status": "paused",
            "run_id": run.id,
            "node": pending.node,
            "prompt": pending.prompt,
            "form_schema": pending.schema_,
            "answer_with": f"hanlin workflow answer {run.id} --data '<JSON>' (or POST "
            f'{{"answer": …}} to /v1/workflows/runs/{run.id}/form on `hanlin serve`)',
        },
        ensure_ascii=False,
    )


__all__ = ["PREFIX", "WorkflowTool", "WorkflowTools", "tool_name"]
