"""``/v1/workflows``: list, show and validate workflows; run one (JSON when it ends or pauses, or
its node events over SSE), its runs (listed, read with every step, resumed, cancelled, rerun
from a node), the human-input form of a paused run (``GET`` it, ``POST`` the answer), a webhook
that starts a run; and the ``workflow:<name>`` models of ``/v1/chat/completions``.

Scope ``workflows``. A run belongs to the key that started it: another key (not an admin) gets
404 for it, as for a run that does not exist. Runs are driven in the background
(:mod:`hanlin.server.flowruns`): a client that leaves does not stop its run, which can be read,
answered or cancelled later. Workflows are named, never read from a path a client gives.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from hanlin.access.auth import Principal
from hanlin.errors import ConflictError, InvalidInputError
from hanlin.flows import RunRecord, StepRecord, Workflow
from hanlin.flows.answer_stream import AnswerStream
from hanlin.flows.authoring import read_draft, read_layout
from hanlin.flows.base import RunFailedError, WorkflowInvalidError
from hanlin.flows.catalog import (
    catalog,
    input_schema,
    inputs_from_message,
    inputs_from_payload,
    named_workflow,
    parse_submitted,
    problem_dicts,
    reply_text,
)
from hanlin.flows.events import FlowEvent, NodeFinishedEvent, RunPausedEvent, event_dict
from hanlin.flows.palette import submitted_ports
from hanlin.flows.schedule import schedule_rows
from hanlin.models.types import Usage
from hanlin.server import sse
from hanlin.server.auth import scope
from hanlin.server.errors import error_event
from hanlin.server.flowruns import WorkflowRuns
from hanlin.server.jsonbody import JSONRoute
from hanlin.server.openai_format import ChatCompletionRequest, Chunks, completion
from hanlin.server.state import ServerState, get_state

router = APIRouter(prefix="/v1/workflows", tags=["workflows"], route_class=JSONRoute)
_FORBID = ConfigDict(extra="forbid")
Status = Literal["pending", "running", "paused", "done", "failed", "cancelled"]


class RunRequest(BaseModel):
    """Start a run: the start node's inputs; ``stream`` for SSE node events."""

    model_config = _FORBID

    inputs: dict[str, Any] = Field(default_factory=dict)
    stream: bool = False


class ResumeRequest(BaseModel):
    model_config = _FORBID

    stream: bool = False


class RerunRequest(BaseModel):
    """A new run keeping the old run's results before ``node``; ``inputs`` replace the old
    ones (then everything from ``node`` on runs with them)."""

    model_config = _FORBID

    node: str = Field(min_length=1, max_length=200)
    inputs: dict[str, Any] | None = None
    stream: bool = False


class FormAnswer(BaseModel):
    """The answer to a paused run's form (checked against the form's JSON schema)."""

    model_config = _FORBID

    answer: dict[str, Any]
    stream: bool = False


class ValidateRequest(BaseModel):
    model_config = _FORBID

    yaml: str = Field(description="a workflow definition in YAML")


def workflow_runs(request: Request) -> WorkflowRuns:
    """FastAPI dependency: the app's workflow runs."""
    runs: WorkflowRuns = request.app.state.workflow_runs
    return runs


def form_url(run_id: str) -> str:
    return f"/v1/workflows/runs/{run_id}/form"


def form_view(run: RunRecord) -> dict[str, Any] | None:
    """A paused run's form: the node asking, its question, the answer's JSON schema."""
    pending = run.pending
    if run.status != "paused" or pending is None:
        return None
    return {
        "run_id": run.id,
        "workflow": run.workflow,
        "node": pending.node,
        "prompt": pending.prompt,
        "kind": pending.kind,
        "schema": pending.schema_,
        "value": pending.value,
        "options": pending.options,
        "url": form_url(run.id),
    }


def run_view(run: RunRecord, history: list[StepRecord] | None = None) -> dict[str, Any]:
    """A run as the API shows it; with ``history``, its state and every step too."""
    data: dict[str, Any] = {
        "id": run.id,
        "object": "workflow.run",
        "workflow": run.workflow,
        "status": run.status,
        "inputs": run.inputs,
        "outputs": run.outputs,
        "error": run.error,
        "form": form_view(run),
        "parent": run.parent,
        "started_by": run.started_by,
        "steps": run.steps,
        "created_at": run.created_at,
        "updated_at": run.updated_at,
    }
    if history is not None:
        data["state"] = run.state
        data["history"] = [s.model_dump() for s in history]
    return data


def _event_json(event: FlowEvent) -> dict[str, Any]:
    data = event_dict(event)
    if isinstance(event, RunPausedEvent):
        data["form_url"] = form_url(event.run_id)
    return data


async def _respond(runs: WorkflowRuns, run_id: str, stream: bool) -> Response:
    """Drive a run; answer with its node events over SSE, or with the run once it ends or
    pauses. What keeps it from starting is an error status, not a stream."""
    follower = await runs.background.drive(run_id)
    if not stream:
        await follower.last()
        run = await asyncio.to_thread(runs.engine.get_run, run_id)
        return JSONResponse(run_view(run))

    async def body() -> AsyncIterator[bytes]:
        try:
            async for event in follower:
                yield sse.event(_event_json(event))
        except Exception as exc:
            yield sse.event(error_event(exc))
        yield sse.DONE

    return sse.response(body())


@router.get("", summary="The workflows in HANLIN_HOME/workflows/, each valid or with its problems")
async def list_workflows(
    state: ServerState = Depends(get_state), caller: Principal = Depends(scope("workflows"))
) -> dict[str, Any]:
    found = await asyncio.to_thread(catalog, state.settings)
    return {"object": "list", "data": [info.public() for info in found]}


@router.post(
    "/validate",
    summary="Check a workflow definition (YAML) without saving or running it: every problem, "
    "each with its node and fix, and each node's ports (branches) and outputs",
)
async def validate_workflow(
    body: ValidateRequest,
    state: ServerState = Depends(get_state),
    caller: Principal = Depends(scope("workflows")),
) -> dict[str, Any]:
    ports = await asyncio.to_thread(submitted_ports, body.yaml)
    try:
        wf = await asyncio.to_thread(parse_submitted, body.yaml, state.settings)
    except InvalidInputError as exc:
        problems = exc.params.get("problems") or [[None, exc.message, exc.hint or ""]]
        return {
            "valid": False,
            "name": exc.params.get("workflow"),
            "error": exc.message,
            "problems": [{"node": p[0], "message": p[1], "fix": p[2]} for p in problems],
            "ports": ports,
        }
    return {
        "valid": True,
        "name": wf.name,
        "error": None,
        "problems": [],
        "nodes": len(wf.graph.order),
        "edges": len(wf.graph.edges),
        "inputs": input_schema(wf),
        "ports": ports,
    }


@router.get("/runs", summary="Workflow runs, newest first (a key sees its own; admins see all)")
async def list_runs(
    workflow: str | None = Query(None, max_length=200, description="only this workflow's runs"),
    status: Status | None = Query(None, description="only runs in this status"),
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0, le=1_000_000),
    runs: WorkflowRuns = Depends(workflow_runs),
    caller: Principal = Depends(scope("workflows")),
) -> dict[str, Any]:
    found = await asyncio.to_thread(
        runs.engine.list_runs, workflow, status, limit + 1, offset=offset
    )
    return {
        "object": "list",
        "data": [run_view(r) for r in found[:limit]],
        "has_more": len(found) > limit,
        "offset": offset,
        "limit": limit,
    }


@router.get("/runs/{run_id}", summary="A run: its status, state and every step in order")
async def get_run(
    run_id: str,
    runs: WorkflowRuns = Depends(workflow_runs),
    caller: Principal = Depends(scope("workflows")),
) -> dict[str, Any]:
    run = await asyncio.to_thread(runs.engine.get_run, run_id)
    history = await asyncio.to_thread(runs.engine.history, run_id)
    return run_view(run, history)


@router.post(
    "/runs/{run_id}/resume",
    summary="Continue a run from its last checkpoint (failed, interrupted or paused)",
    response_model=None,
)
async def resume_run(
    run_id: str,
    body: ResumeRequest | None = None,
    runs: WorkflowRuns = Depends(workflow_runs),
    caller: Principal = Depends(scope("workflows")),
) -> Response:
    return await _respond(runs, run_id, bool(body and body.stream))


@router.post("/runs/{run_id}/cancel", summary="Cancel a run (a running one stops at its next node)")
async def cancel_run(
    run_id: str,
    runs: WorkflowRuns = Depends(workflow_runs),
    caller: Principal = Depends(scope("workflows")),
) -> dict[str, Any]:
    return run_view(await asyncio.to_thread(runs.engine.cancel, run_id))


@router.post(
    "/runs/{run_id}/rerun",
    summary="A new run from a node, keeping the old run's results before it (inputs may change)",
    response_model=None,
)
async def rerun(
    run_id: str,
    body: RerunRequest,
    runs: WorkflowRuns = Depends(workflow_runs),
    caller: Principal = Depends(scope("workflows")),
) -> Response:
    new = await asyncio.to_thread(runs.engine.rerun, run_id, body.node, body.inputs)
    return await _respond(runs, new.id, body.stream)


@router.get(
    "/runs/{run_id}/form",
    summary="The form a paused run waits on: the node, its question, the answer's JSON schema",
)
async def get_form(
    run_id: str,
    runs: WorkflowRuns = Depends(workflow_runs),
    caller: Principal = Depends(scope("workflows")),
) -> dict[str, Any]:
    run = await asyncio.to_thread(runs.engine.get_run, run_id)
    form = form_view(run)
    if form is None:
        raise ConflictError(
            f"workflow run '{run_id}' is {run.status}, not waiting for input",
            hint=f"GET /v1/workflows/runs/{run_id} shows where it is",
            code="workflow_not_paused",
            params={"run": run_id, "status": run.status},
        )
    return form


@router.post(
    "/runs/{run_id}/form",
    summary="Answer a paused run's form and resume it (422 naming the field if the answer "
    "does not fit the form; the run stays paused)",
    response_model=None,
)
async def answer_form(
    run_id: str,
    body: FormAnswer,
    runs: WorkflowRuns = Depends(workflow_runs),
    caller: Principal = Depends(scope("workflows")),
) -> Response:
    await asyncio.to_thread(runs.engine.answer, run_id, body.answer)
    return await _respond(runs, run_id, body.stream)


@router.get("/{name}", summary="One workflow: its definition, nodes, edges and input schema")
async def show_workflow(
    name: str,
    draft: bool = Query(
        False, description="an invalid workflow answers with its definition and problems"
    ),
    state: ServerState = Depends(get_state),
    runs: WorkflowRuns = Depends(workflow_runs),
    caller: Principal = Depends(scope("workflows")),
) -> dict[str, Any]:
    """``triggers``: each schedule trigger with its next fire and its last one (time, outcome,
    run), as ``hanlin workflow show`` lists them."""
    try:
        wf = await asyncio.to_thread(named_workflow, name, state.settings)
    except WorkflowInvalidError as exc:
        if not draft:
            raise
        return {
            "name": name,
            "valid": False,
            "problems": problem_dicts(exc),
            "definition": await asyncio.to_thread(read_draft, name, state.settings),
            "layout": await asyncio.to_thread(read_layout, name, state.settings),
        }
    graph = wf.graph
    return {
        "name": wf.name,
        "valid": True,
        "description": wf.spec.description,
        "inputs": input_schema(wf),
        "nodes": [
            {"id": n, "type": graph.nodes[n].type, "outputs": _outputs(wf, n)} for n in graph.order
        ],
        "edges": [str(e) for e in graph.edges],
        "definition": wf.spec.to_data(),
        "yaml": wf.to_yaml(),
        "layout": await asyncio.to_thread(read_layout, name, state.settings),
        "triggers": await asyncio.to_thread(schedule_rows, wf, runs.engine.store, time.time()),
    }


def _outputs(wf: Workflow, node: str) -> dict[str, str] | None:
    return wf.graph.types[node].outputs(wf.graph.configs[node])


@router.post(
    "/{name}/runs",
    summary="Run a workflow: the run as JSON when it ends or pauses, or its node events over "
    "SSE (stream=true)",
    response_model=None,
)
async def run_workflow(
    name: str,
    body: RunRequest,
    state: ServerState = Depends(get_state),
    runs: WorkflowRuns = Depends(workflow_runs),
    caller: Principal = Depends(scope("workflows")),
) -> Response:
    wf = await asyncio.to_thread(named_workflow, name, state.settings)
    run = await asyncio.to_thread(runs.engine.start, wf, body.inputs)
    return await _respond(runs, run.id, body.stream)


@router.post(
    "/{name}/webhook",
    summary="Start a run from a webhook (its JSON body is the run's inputs); 202 with the run's "
    "id at once, the run goes on in the background",
    status_code=202,
    response_model=None,
)
async def webhook(
    name: str,
    payload: dict[str, Any] | None = Body(None),
    state: ServerState = Depends(get_state),
    runs: WorkflowRuns = Depends(workflow_runs),
    caller: Principal = Depends(scope("workflows")),
) -> Response:
    wf = await asyncio.to_thread(named_workflow, name, state.settings)
    run = await asyncio.to_thread(runs.engine.start, wf, inputs_from_payload(wf, payload or {}))
    (await runs.background.drive(run.id)).detach()
    return JSONResponse(
        {"id": run.id, "object": "workflow.run", "workflow": wf.name, "status": "running"}
        | {"url": f"/v1/workflows/runs/{run.id}"},
        status_code=202,
    )


# --- workflow:<name> chat models ----------------------------------------------------------


def parse_workflow_model(model: str) -> str | None:
    """``workflow:NAME`` → NAME; anything else → None."""
    if not model.startswith("workflow:"):
        return None
    name = model[len("workflow:") :]
    if not name:
        raise InvalidInputError(
            "workflow: needs a name", hint="use workflow:NAME (see GET /v1/workflows)"
        )
    return name


async def workflow_models(state: ServerState, caller: Principal) -> list[dict[str, Any]]:
    """A ``workflow:NAME`` model object per valid workflow, for callers with the scope."""
    if not caller.can("workflows"):
        return []
    found = await asyncio.to_thread(catalog, state.settings)
    return [
        {
            "id": f"workflow:{info.name}",
            "object": "model",
            "created": 0,
            "owned_by": "hanlin",
            "hanlin": {"kind": "workflow", "available": True, "description": info.description},
        }
        for info in found
        if info.valid
    ]


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    from hanlin.models.gateway import as_messages

    turns = as_messages(messages)
    if turns[-1].role != "user" or not turns[-1].text.strip():
        raise InvalidInputError(
            "the last message must be the user's (with text) for workflow: models",
            hint="end messages with a user message: it fills the workflow's start node",
            param="messages",
        )
    return turns[-1].text


def _paused_text(run: RunRecord) -> str:
    pending = run.pending
    where = f" at '{pending.node}': {pending.prompt}" if pending else ""
    return (
        f"The workflow '{run.workflow}' is waiting for input{where}\n"
        f"Run {run.id} is paused. GET {form_url(run.id)} shows the form; POST "
        f'{{"answer": {{…}}}} there answers it and resumes the run.'
    )


def _usage(events: list[FlowEvent]) -> Usage:
    """The tokens the run's llm nodes used (as they reported them)."""
    total = Usage()
    for e in events:
        if isinstance(e, NodeFinishedEvent) and e.node_type == "llm":
            u = e.outputs.get("usage") or {}
            total += Usage(int(u.get("prompt_tokens", 0)), int(u.get("completion_tokens", 0)))
    return total


async def workflow_chat(
    req: ChatCompletionRequest,
    name: str,
    state: ServerState,
    caller: Principal,
    runs: WorkflowRuns,
) -> Response:
    """``model: "workflow:NAME"``: the last user message fills the start node (its first text
    input, or several from a JSON object); the reply is the run's answer. A run that pauses
    for a person answers with where to answer it (``hanlin.form_url``); a failed run is an
    error (422 ``workflow_run_failed``), a stream's error event once streaming. A stream sends
    the answer's llm tokens as the model writes them (:mod:`hanlin.flows.answer_stream`)."""
    caller.require("workflows")
    wf = await asyncio.to_thread(named_workflow, name, state.settings)
    inputs = inputs_from_message(wf, _last_user_text(req.messages))
    run = await asyncio.to_thread(runs.engine.start, wf, inputs)
    follower = await runs.background.drive(run.id)

    async def settle(events: list[FlowEvent]) -> tuple[RunRecord, Usage]:
        done = await asyncio.to_thread(runs.engine.get_run, run.id)
        if done.status not in ("done", "paused"):
            raise RunFailedError(
                f"workflow '{done.workflow}' run {done.id} {done.status}: {done.error or ''}",
                hint=f"see GET /v1/workflows/runs/{done.id}; fix the cause, then POST "
                f"/v1/workflows/runs/{done.id}/resume",
                params={"run": done.id, "workflow": done.workflow, "status": done.status},
            )
        return done, _usage(events)

    def extra(done: RunRecord) -> dict[str, Any]:
        info: dict[str, Any] = {"run_id": done.id, "status": done.status}
        if done.status == "paused":
            info["form_url"] = form_url(done.id)
        return {"hanlin": info}

    def text(done: RunRecord) -> str:
        return reply_text(done) if done.status == "done" else _paused_text(done)

    if not req.stream:
        done, usage = await settle([e async for e in follower])
        return JSONResponse(completion(req.model, text(done), usage, extra=extra(done)))
    chunks = Chunks(req.model, req.include_usage)
    answer = AnswerStream(wf)

    async def body() -> AsyncIterator[bytes]:
        yield chunks.delta({"role": "assistant", "content": ""})
        events: list[FlowEvent] = []
        try:
            async for event in follower:
                events.append(event)
                if piece := answer.feed(event):
                    yield chunks.delta({"content": piece})
            done, usage = await settle(events)
        except Exception as exc:
            yield sse.event(error_event(exc))
            return
        if rest := answer.rest(text(done)):
            yield chunks.delta({"content": rest})
        yield chunks.delta({}, "stop", **extra(done))
        if chunks.include_usage:
            yield chunks.usage(usage)
        yield sse.DONE

    return sse.response(body())
