"""``/api/prompts``: the prompt registry — list prompts, read a prompt with its labels and label
history, its versions, a diff of two versions, render a version with values, run a version (or
an unsaved draft) against a gateway model (scope ``chat``: a model call on the caller's behalf,
checked, budgeted and traced like a chat completion), and create a version or move a label
(scope ``admin``: a label move changes what every RAG answer and agent run reading that label
says, from the next one on). The library is :mod:`hanlin.prompts`; the author of a change is
the caller's key id (``local`` keyless)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from hanlin.access.auth import Principal
from hanlin.prompts import PromptLibrary
from hanlin.prompts.base import LABEL_RE, MAX_TEXT, MAX_VARIABLES, NewVersion, Variable
from hanlin.prompts.playground import prepare_call
from hanlin.server.auth import scope
from hanlin.server.disconnect import cancel_on_disconnect
from hanlin.server.jsonbody import JSONRoute
from hanlin.server.state import ServerState, get_state
from hanlin.tracing import spans
from hanlin.tracing.setup import begin_trace

router = APIRouter(prefix="/api/prompts", tags=["prompts"], route_class=JSONRoute)
Admin = Depends(scope("admin"))
Chat = Depends(scope("chat"))
#: the author recorded for the keyless local server
LOCAL = "local"


def prompts(request: Request) -> PromptLibrary:
    """FastAPI dependency: the app's prompt library."""
    library: PromptLibrary = request.app.state.prompts
    return library


Library = Depends(prompts)


class CreateVersion(NewVersion):
    """A new version; ``{name}`` fields not in ``variables`` keep the previous version's
    declaration, else are required strings. ``label`` is then pointed at it."""

    label: str | None = Field(default=None, pattern=LABEL_RE.pattern)


class MoveLabel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=2**31 - 1)


class RenderBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(default=None, ge=1, le=2**31 - 1)
    label: str | None = Field(
        default=None, pattern=LABEL_RE.pattern, description="default: production"
    )
    variables: dict[str, Any] = Field(default_factory=dict, max_length=100)


class RunBody(BaseModel):
    """What to run: a stored version (``version``, or ``label``; default ``production``) or an
    unsaved ``text`` (a draft, checked like a new version, saved nowhere), with its values."""

    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(default=None, ge=1, le=2**31 - 1)
    label: str | None = Field(default=None, pattern=LABEL_RE.pattern)
    text: str | None = Field(
        default=None, min_length=1, max_length=MAX_TEXT, description="a draft to run instead"
    )
    declare: list[Variable] = Field(
        default_factory=list,
        max_length=MAX_VARIABLES,
        description="a draft's variable declarations (undeclared fields keep the prompt's)",
    )
    variables: dict[str, Any] = Field(default_factory=dict, max_length=100)
    model: str | None = Field(
        default=None,
        min_length=1,
        max_length=300,
        description="a gateway model (default: the version's config, else the server's default)",
    )
    input: str | None = Field(
        default=None,
        max_length=MAX_TEXT,
        description="a user message after the prompt (a plain prompt is then the system message)",
    )
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)


def _author(caller: Principal) -> str:
    return caller.access.user or LOCAL


@router.get("", summary="Every prompt with its latest version and labels")
async def list_prompts(library: PromptLibrary = Library, _: Principal = Chat) -> dict[str, Any]:
    found = await asyncio.to_thread(library.list)
    return {"data": [p.model_dump() for p in found]}


@router.get("/{name}", summary="A prompt: its latest version, labels and label history")
async def get_prompt(
    name: str, library: PromptLibrary = Library, _: Principal = Chat
) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        latest = library.get(name)
        return {
            "name": name,
            "latest": latest.model_dump(),
            "labels": library.labels(name),
            "label_history": [m.model_dump() for m in library.label_history(name)],
        }

    return await asyncio.to_thread(read)


@router.get("/{name}/versions", summary="Every version of a prompt, oldest first")
async def list_versions(
    name: str, library: PromptLibrary = Library, _: Principal = Chat
) -> dict[str, Any]:
    found = await asyncio.to_thread(library.versions, name)
    return {"data": [v.model_dump() for v in found]}


@router.get("/{name}/versions/{version}", summary="One version")
async def get_version(
    name: str,
    version: int = Path(ge=1, le=2**31 - 1),
    library: PromptLibrary = Library,
    _: Principal = Chat,
) -> dict[str, Any]:
    found = await asyncio.to_thread(library.get, name, version=version)
    return found.model_dump()


@router.post(
    "/{name}/versions",
    status_code=201,
    summary="Create a version (admin); identical to the latest: 200 with that one",
)
async def create_version(
    name: str,
    body: CreateVersion,
    response: Response,
    library: PromptLibrary = Library,
    caller: Principal = Admin,
) -> dict[str, Any]:
    author = _author(caller)
    new = NewVersion.model_validate(body.model_dump(exclude={"label"}))

    def create() -> dict[str, Any]:
        made, created = library.create(name, new, author, label=body.label)
        return {"version": made.model_dump(), "created": created, "labels": library.labels(name)}

    result = await asyncio.to_thread(create)
    if not result["created"]:
        response.status_code = 200
    return result


@router.put(
    "/{name}/labels/{label}",
    summary="Point a label at a version (admin); readers of the label use it from now on",
)
async def move_label(
    name: str,
    label: str,
    body: MoveLabel,
    library: PromptLibrary = Library,
    caller: Principal = Admin,
) -> dict[str, Any]:
    move = await asyncio.to_thread(library.set_label, name, label, body.version, _author(caller))
    return move.model_dump()


@router.get("/{name}/diff", summary="A unified diff of two versions (text, variables, config)")
async def diff_versions(
    name: str,
    old: int = Query(alias="from", ge=1, le=2**31 - 1),
    new: int = Query(alias="to", ge=1, le=2**31 - 1),
    library: PromptLibrary = Library,
    _: Principal = Chat,
) -> dict[str, Any]:
    text = await asyncio.to_thread(library.diff, name, old, new)
    return {"name": name, "from": old, "to": new, "diff": text}


@router.post("/{name}/render", summary="Fill a version's variables (checked) and return the text")
async def render_prompt(
    name: str, body: RenderBody, library: PromptLibrary = Library, _: Principal = Chat
) -> dict[str, Any]:
    found, text = await asyncio.to_thread(
        library.render, name, body.variables, version=body.version, label=body.label
    )
    return {
        "name": found.name,
        "version": found.version,
        "text": text,
        "config": None if found.config is None else found.config.model_dump(),
    }


@router.post(
    "/{name}/run",
    summary="Run a version (or a draft) against a gateway model: output, tokens, latency, cost",
    response_model=None,
)
async def run_prompt(
    name: str,
    body: RunBody,
    request: Request,
    library: PromptLibrary = Library,
    state: ServerState = Depends(get_state),
    _: Principal = Chat,
) -> Response:
    call = await asyncio.to_thread(
        prepare_call,
        library,
        name,
        body.variables,
        default_model=state.gateway.models.default,
        version=body.version,
        label=body.label,
        text=body.text,
        variables=body.declare,
        model=body.model,
        user_input=body.input,
        temperature=body.temperature,
        max_tokens=body.max_tokens,
    )
    trace_id = begin_trace()
    # the gateway checks the caller's chat scope and budget, and records the call as theirs
    with spans.span(f"prompt {call.ref}", operation="prompt", attrs={"hanlin.prompt": call.ref}):
        work = state.gateway.achat(call.messages, call.model, **call.options)
        resp = await cancel_on_disconnect(request, work)
    usage = resp.usage
    result = {
        "name": name,
        "version": call.version.version or None,
        "model": call.model,
        "served_by": resp.served_by,
        "messages": call.messages,
        "output": resp.text,
        "finish_reason": resp.finish_reason,
        "usage": {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "cached_tokens": usage.cached_tokens,
        },
        "latency_ms": round(resp.latency_ms, 1),
        "cost": None if resp.cost is None else {"usd": resp.cost.usd, "cny": resp.cost.cny},
        "trace_id": trace_id,
    }
    response = JSONResponse(result)
    if trace_id:
        response.headers["X-Trace-Id"] = trace_id
    return response
