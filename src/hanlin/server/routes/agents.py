"""``/v1/agents``: list agents, run one with its events over SSE, answer its approval requests;
and the ``agent:<name>`` models of ``/v1/chat/completions``.

A run's stream opens with ``{"type": "run", "run_id": …}`` and then carries every agent event
as JSON (``text``, ``tool_call``, ``approval_request``, ``tool_result``, ``step``, planner
events, ``final``), then ``[DONE]``. The agent is opened (tools checked, MCP servers started)
before the 200, so a broken definition is a proper error status. A client that disconnects —
streamed or not — cancels its run: no further model call or tool step is made, and the run's
status says ``cancelled``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from hanlin.access.auth import Principal
from hanlin.agents.event_json import event_dict
from hanlin.agents.events import ApprovalRequest, FinalEvent, TextEvent
from hanlin.errors import InvalidInputError, NotFoundError
from hanlin.models.types import Usage
from hanlin.server import sse
from hanlin.server.agentruns import AgentRun, AgentRuns
from hanlin.server.auth import scope
from hanlin.server.disconnect import cancel_on_disconnect
from hanlin.server.errors import error_event
from hanlin.server.jsonbody import JSONRoute
from hanlin.server.openai_format import ChatCompletionRequest, Chunks, completion
from hanlin.server.state import ServerState, get_state

router = APIRouter(prefix="/v1/agents", tags=["agents"], route_class=JSONRoute)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class AgentRunRequest(BaseModel):
    """Run an agent on a task (a string) or a conversation (OpenAI-format messages)."""

    model_config = ConfigDict(extra="forbid")

    input: str | list[dict[str, Any]] = Field(min_length=1)
    stream: bool = True
    session: str | None = Field(default=None, description="memory session (default: the run's id)")


class ApprovalAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approved: bool


def agent_runs(request: Request) -> AgentRuns:
    """FastAPI dependency: the app's agent runs."""
    runs: AgentRuns = request.app.state.agent_runs
    return runs


@router.get("", summary="The agents this server can run (built-in and HANLIN_HOME/agents/*.yaml)")
async def list_agents(
    state: ServerState = Depends(get_state), caller: Principal = Depends(scope("agents"))
) -> dict[str, Any]:
    from hanlin.agents.spec import list_agent_specs

    data = [
        {
            "name": i.name,
            "description": i.description,
            "mode": i.mode,
            "model": i.model,
            "tools": i.tools,
            "error": i.error,
        }
        for i in list_agent_specs(state.settings)
    ]
    return {"object": "list", "data": data}


@router.get("/runs/{run_id}", summary="A run's status and the approvals it waits for")
async def run_status(
    run_id: str,
    runs: AgentRuns = Depends(agent_runs),
    caller: Principal = Depends(scope("agents")),
) -> dict[str, Any]:
    return runs.get(run_id, caller).summary()


@router.post(
    "/runs/{run_id}/approvals/{call_id}",
    summary="Approve or deny a tool call an agent run is waiting on",
)
async def answer_approval(
    run_id: str,
    call_id: str,
    answer: ApprovalAnswer,
    runs: AgentRuns = Depends(agent_runs),
    caller: Principal = Depends(scope("agents")),
) -> dict[str, Any]:
    run = runs.decide(run_id, call_id, answer.approved, caller)
    return {"run_id": run.id, "call_id": call_id, "approved": answer.approved}


@router.get("/{name}", summary="One agent's definition")
async def show_agent(
    name: str,
    state: ServerState = Depends(get_state),
    caller: Principal = Depends(scope("agents")),
) -> dict[str, Any]:
    return _describe(_spec(name, state))


def _spec(name: str, state: ServerState) -> Any:
    """A named agent; the server never reads a file a client names."""
    from hanlin.agents.spec import load_agent_spec

    if not _NAME.fullmatch(name) or name.endswith((".yaml", ".yml")):
        raise NotFoundError(
            f"no agent named '{name}'",
            hint="agents are named by GET /v1/agents (files in HANLIN_HOME/agents/NAME.yaml)",
        )
    return load_agent_spec(name, state.settings)


@router.post(
    "/{name}/runs",
    summary="Run an agent: SSE events (stream=true, default) or the whole result as JSON",
    response_model=None,
)
async def start_run(
    name: str,
    body: AgentRunRequest,
    request: Request,
    state: ServerState = Depends(get_state),
    runs: AgentRuns = Depends(agent_runs),
    caller: Principal = Depends(scope("agents")),
) -> Response:
    run = runs.start(name, caller)
    stack, agent = await _open(name, state, runs, run, caller, body.session, body.stream)
    events = agent.astream(body.input)
    if not body.stream:
        collected, final = await cancel_on_disconnect(request, _collect(events, stack, runs, run))
        return JSONResponse(
            {"run_id": run.id, **event_dict(final), "events": [event_dict(e) for e in collected]}
        )

    async def body_bytes() -> AsyncIterator[bytes]:
        yield sse.event({"type": "run", "run_id": run.id, "agent": name})
        try:
            async for event in events:
                data = event_dict(event)
                if isinstance(event, ApprovalRequest):
                    runs.expect(run, event)
                    data["run_id"] = run.id
                yield sse.event(data)
                if isinstance(event, FinalEvent):
                    runs.finish(run, "done", event.stop_reason)
        except Exception as exc:
            runs.finish(run, "failed", "error")
            yield sse.event(error_event(exc))
        yield sse.DONE

    async def close() -> None:
        await events.aclose()
        await stack.aclose()
        if run.status == "running":
            runs.finish(run, "cancelled", None)

    return sse.response(body_bytes(), close)


async def _open(
    name: str,
    state: ServerState,
    runs: AgentRuns,
    run: AgentRun,
    caller: Principal,
    session: str | None,
    interactive: bool,
) -> tuple[AsyncExitStack, Any]:
    """Open the named agent (closed with the returned stack); approvals go to this run's
    callers (denied without a stream). A failure marks the run failed and raises."""
    from hanlin.agents.spec import open_agent

    async def approve(request: ApprovalRequest) -> bool:
        return await runs.wait(run, request) if interactive else False

    stack = AsyncExitStack()
    try:
        agent = await stack.enter_async_context(
            open_agent(
                _spec(name, state),
                state.gateway,
                approval_callback=approve,
                user=caller.user,
                session=session or run.id,
                embedders=state.kbs.embedder,
            )
        )
    except BaseException:
        await stack.aclose()
        runs.finish(run, "failed", "error")
        raise
    return stack, agent


async def _collect(
    events: AsyncIterator[Any], stack: AsyncExitStack, runs: AgentRuns, run: AgentRun
) -> tuple[list[Any], FinalEvent]:
    """Run to the end without a stream, then close the agent. Cancelled (the client left),
    the run stops where it is and is recorded as cancelled."""
    try:
        collected = [e async for e in events]
    except asyncio.CancelledError:
        runs.finish(run, "cancelled", None)
        raise
    except Exception:
        runs.finish(run, "failed", "error")
        raise
    finally:
        await _close(events)
        await stack.aclose()
    final = collected[-1]
    assert isinstance(final, FinalEvent)
    runs.finish(run, "done", final.stop_reason)
    return collected, final


def parse_agent_model(model: str) -> str | None:
    """``agent:NAME`` → NAME; anything else → None."""
    if not model.startswith("agent:"):
        return None
    name = model[len("agent:") :]
    if not name:
        raise InvalidInputError("agent: needs a name", hint="use agent:NAME (see GET /v1/agents)")
    return name


async def _close(events: AsyncIterator[Any]) -> None:
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()


async def agent_chat(
    req: ChatCompletionRequest,
    name: str,
    state: ServerState,
    caller: Principal,
    runs: AgentRuns,
    request: Request,
) -> Response:
    """``model: "agent:NAME"``: the agent answers the conversation; its tool steps ride along in
    ``hanlin.events``. Calls needing approval are denied (no channel to ask) unless the
    agent's definition auto-approves them."""
    caller.require("agents")
    run = runs.start(name, caller)
    stack, agent = await _open(name, state, runs, run, caller, None, interactive=False)
    events = agent.astream(req.messages)
    if not req.stream:
        _, final = await cancel_on_disconnect(request, _collect(events, stack, runs, run))
        extra = {"hanlin": {"run_id": run.id, "stop_reason": final.stop_reason}}
        return JSONResponse(
            completion(req.model, final.text, final.usage, finish_reason="stop", extra=extra)
        )
    chunks = Chunks(req.model, req.include_usage)

    async def body_bytes() -> AsyncIterator[bytes]:
        yield chunks.delta({"role": "assistant", "content": ""})
        usage = Usage()
        try:
            async for event in events:
                if isinstance(event, TextEvent) and event.text:
                    yield chunks.delta({"content": event.text})
                elif isinstance(event, FinalEvent):
                    usage = event.usage
                    runs.finish(run, "done", event.stop_reason)
                    extra = {"hanlin": {"run_id": run.id, "stop_reason": event.stop_reason}}
                    yield chunks.delta({}, "stop", **extra)
        except Exception as exc:
            runs.finish(run, "failed", "error")
            yield sse.event(error_event(exc))
            return
        if chunks.include_usage:
            yield chunks.usage(usage)
        yield sse.DONE

    async def close() -> None:
        await events.aclose()
        await stack.aclose()
        if run.status == "running":  # the client left before the end
            runs.finish(run, "cancelled", None)

    return sse.response(body_bytes(), close)


def _describe(spec: Any) -> dict[str, Any]:
    data: dict[str, Any] = spec.model_dump(mode="json")
    return data
