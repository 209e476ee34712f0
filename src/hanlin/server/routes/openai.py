"""``/v1``: the OpenAI-compatible API — chat completions (gateway models and ``kb:`` models),
embeddings and the model list. Translation lives in :mod:`hanlin.server.openai_format`."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from hanlin.access.auth import Principal
from hanlin.errors import HanlinError, InvalidInputError
from hanlin.guard.policy import user_facing
from hanlin.knowledge.kb import KnowledgeBase
from hanlin.models.base_models import is_base_model
from hanlin.models.catalog import AliasStore
from hanlin.models.errors import ModelNotFoundError
from hanlin.models.keys import endpoint_key_status
from hanlin.rag.base import Citation, RagEvent
from hanlin.rag.engine import RagEngine
from hanlin.server import sse
from hanlin.server.agentruns import AgentRuns
from hanlin.server.auth import scope
from hanlin.server.disconnect import cancel_on_disconnect
from hanlin.server.errors import error_event
from hanlin.server.jsonbody import JSONRoute
from hanlin.server.openai_format import (
    ChatCompletionRequest,
    Chunks,
    EmbeddingRequest,
    answer_chunks,
    answer_completion,
    chat_options,
    check_fields,
    cite_label,
    gateway_chunks,
    gateway_completion,
    kb_generation,
    parse_kb_model,
    split_conversation,
)
from hanlin.server.routes.agents import agent_chat, agent_runs, parse_agent_model
from hanlin.server.routes.workflows import parse_workflow_model, workflow_chat, workflow_models
from hanlin.server.state import ServerState, get_state
from hanlin.text import count_tokens
from hanlin.tracing.setup import begin_trace

#: the response header naming the trace of a chat completion (rate it at /api/traces/{id}/rating)
TRACE_HEADER = "X-Trace-Id"

router = APIRouter(prefix="/v1", tags=["openai"], route_class=JSONRoute)


@router.get(
    "/models",
    summary="The models that can run: gateway models, aliases, routes, one kb:<name> per "
    "knowledge base and one workflow:<name> per valid workflow (all=true adds those not "
    "configured, with hanlin.available false)",
)
async def list_models(
    all: bool = Query(False, description="also list models whose provider has no key"),
    state: ServerState = Depends(get_state),
    caller: Principal = Depends(scope("chat")),
) -> dict[str, Any]:
    data = _models(state, caller) + await workflow_models(state, caller)
    if not all:
        data = [m for m in data if m["hanlin"].get("available", True)]
    return {"object": "list", "data": data}


@router.get(
    "/models/{model:path}",
    summary="One model object (404 model_not_found, with the closest names, if unknown)",
)
async def get_model(
    model: str, state: ServerState = Depends(get_state), caller: Principal = Depends(scope("chat"))
) -> dict[str, Any]:
    known = {m["id"]: m for m in _models(state, caller) + await workflow_models(state, caller)}
    if model in known:
        return known[model]
    catalog = state.gateway.catalog
    try:  # a bare name (gpt-4o-mini) resolves to the one endpoint that lists it
        route = catalog.resolve(model)
    except HanlinError:
        route = None
    if route is not None and len(route.deployments) == 1:
        label = route.deployments[0].label
        if label in known:
            return known[label] | {
                "id": model,
                "hanlin": known[label]["hanlin"] | {"target": label},
            }
    close = [m for m in catalog.closest(model) if m in known]
    hint = f"did you mean {', '.join(close)}?" if close else "see GET /v1/models"
    raise ModelNotFoundError(
        f"the model '{model}' does not exist", hint=hint, closest=close, params={"model": model}
    )


def _models(state: ServerState, caller: Principal) -> list[dict[str, Any]]:
    """Every model object, each with ``hanlin.available``: whether it can run now; gateway
    models and aliases also with ``hanlin.base_model``: whether it cannot follow instructions
    (the web UI says so when one is picked)."""
    gw = state.gateway
    data: list[dict[str, Any]] = []

    def base(name: str) -> bool:
        return is_base_model(gw.settings, name, resolve=gw.resolve, missing_ok=True)

    ready = {
        e.name: endpoint_key_status(e, gw.keys).available for e in gw.catalog.endpoints.values()
    }
    for endpoint in gw.catalog.endpoints.values():
        has_key = ready[endpoint.name]
        for info in endpoint.models:
            data.append(
                {
                    "id": f"{endpoint.name}/{info.name}",
                    "object": "model",
                    "created": 0,
                    "owned_by": endpoint.name,
                    "hanlin": {
                        "kind": info.kind,
                        "context": info.context,
                        "available": has_key,
                        "base_model": base(f"{endpoint.name}/{info.name}"),
                    },
                }
            )
    names = {**AliasStore(state.settings.home / "aliases.json").load(), **gw.models.routes}
    for name in sorted(names):
        data.append(
            {
                "id": name,
                "object": "model",
                "created": 0,
                "owned_by": "hanlin",
                "hanlin": {
                    "kind": "alias",
                    "targets": names[name].deployments,
                    "available": any(
                        ready.get(d.split("/", 1)[0], False) for d in names[name].deployments
                    ),
                    "base_model": base(name),
                },
            }
        )
    for kb in state.kbs.names():
        if caller.can_kb(kb):
            data.append(
                {
                    "id": f"kb:{kb}",
                    "object": "model",
                    "created": 0,
                    "owned_by": "hanlin",
                    "hanlin": {"kind": "knowledge_base", "available": True},
                }
            )
    return data


@router.post(
    "/chat/completions",
    summary="Chat (OpenAI format; stream=true for SSE). model may be kb:<name>, agent:<name> or "
    "workflow:<name>; "
    "the X-Trace-Id response header names the answer's trace",
    response_model=None,
)
async def chat_completions(
    req: ChatCompletionRequest,
    request: Request,
    state: ServerState = Depends(get_state),
    caller: Principal = Depends(scope("chat")),
    runs: AgentRuns = Depends(agent_runs),
) -> Response:
    # the answer's trace id is chosen now: a stream's headers leave before its first span
    trace_id = begin_trace()
    response = await _chat(req, request, state, caller, runs)
    if trace_id:
        response.headers[TRACE_HEADER] = trace_id
    return response


async def _chat(
    req: ChatCompletionRequest,
    request: Request,
    state: ServerState,
    caller: Principal,
    runs: AgentRuns,
) -> Response:
    agent = parse_agent_model(req.model)
    if agent is not None:
        check_fields(req, "agent")
        return await agent_chat(req, agent, state, caller, runs, request)
    workflow = parse_workflow_model(req.model)
    if workflow is not None:
        check_fields(req, "workflow")
        return await workflow_chat(req, workflow, state, caller, request.app.state.workflow_runs)
    kb_model = parse_kb_model(req.model)
    if kb_model is not None:
        kb_chat = _kb_chat(req, kb_model[0], kb_model[1], state, caller)
        return await cancel_on_disconnect(request, kb_chat)
    options = chat_options(req, caller.user)
    if not req.stream:
        # the answer goes to a person: links outside guard.allowed_link_hosts are neutralised
        with user_facing():
            resp = await cancel_on_disconnect(
                request, state.gateway.achat(req.messages, req.model, options)
            )
        return JSONResponse(gateway_completion(req.model, resp))
    with user_facing():
        stream = state.gateway.astream(req.messages, req.model, options)
    try:
        # fail with a proper status before the 200 is sent; a client that leaves while the
        # call waits for the model cancels it
        first = await cancel_on_disconnect(request, anext(stream))
    except StopAsyncIteration:
        first = None
    except BaseException:
        await stream.aclose()
        raise
    chunks = Chunks(req.model, req.include_usage)
    return sse.response(_guarded(gateway_chunks(chunks, first, stream)), stream.aclose)


async def _kb_chat(
    req: ChatCompletionRequest,
    name: str,
    generator: str | None,
    state: ServerState,
    caller: Principal,
) -> Response:
    caller.require("chat", kb=name)
    check_fields(req, "kb")
    question, history = split_conversation(req.messages)
    opts = req.hanlin
    kwargs: dict[str, Any] = {
        "model": generator,
        "history": history,
        "mode": opts.mode if opts else "auto",
        "k": opts.k if opts else None,
        "filters": opts.filters if opts else None,
        "generation": kb_generation(req),
        "prompt_label": opts.prompt_label if opts else None,
    }
    if not req.stream:
        async with state.kbs.use(name) as kb:
            answer = await RagEngine(kb, state.gateway, user=caller.user).aask(question, **kwargs)
            label = await _labeler(kb)
        return JSONResponse(answer_completion(req.model, answer, label))

    kb = await state.kbs.checkout(name)
    events = RagEngine(kb, state.gateway, user=caller.user).astream(question, **kwargs)
    finished = False

    async def release() -> None:
        await events.aclose()
        state.kbs.checkin(name, kb, clean=finished)

    async def body(first: RagEvent) -> AsyncIterator[bytes]:
        nonlocal finished
        async for piece in answer_chunks(chunks, first, events, label):
            yield piece
        finished = True

    try:
        first: RagEvent = await anext(events)
        label = await _labeler(kb)
    except BaseException:
        await events.aclose()
        state.kbs.checkin(name, kb, clean=False)
        raise
    chunks = Chunks(req.model, req.include_usage)
    return sse.response(_guarded(body(first)), release)


async def _labeler(kb: KnowledgeBase) -> Any:
    """Footnote labels with public source names (upload names, paths relative to their folder)."""
    import asyncio

    names = await asyncio.to_thread(kb.public_names)

    def label(c: Citation) -> str:
        return cite_label(c, names.source(c.source))

    return label


async def _guarded(body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Stream ``body``; an error after the 200 becomes OpenAI's in-stream error event."""
    try:
        async for piece in body:
            yield piece
    except Exception as exc:
        yield sse.event(error_event(exc))


@router.post("/embeddings", summary="Embeddings (OpenAI format), e.g. model local-embed/fast-use")
async def embeddings(
    req: EmbeddingRequest,
    state: ServerState = Depends(get_state),
    caller: Principal = Depends(scope("chat")),
) -> dict[str, Any]:
    for name in req.model_extra or {}:
        raise InvalidInputError(
            f"/v1/embeddings does not support {name}",
            hint="it takes input, model, encoding_format, dimensions and user",
            param=name,
        )
    texts = [req.input] if isinstance(req.input, str) else req.input
    if not texts or not all(isinstance(t, str) for t in texts):
        raise InvalidInputError(
            "input must be a string or a non-empty list of strings",
            hint="token arrays are not supported: send the text",
            param="input",
        )
    strings = [str(t) for t in texts]
    if not all(t.strip() for t in strings):
        empty = next(i for i, t in enumerate(strings) if not t.strip())
        raise InvalidInputError(
            f"input[{empty}] is empty" if isinstance(req.input, list) else "input is empty",
            hint="every input must contain text: leave out the empty strings",
            param="input",
        )
    vectors = await state.gateway.aembed(strings, req.model)
    if req.dimensions is not None and vectors and req.dimensions != len(vectors[0]):
        raise InvalidInputError(
            f"{req.model} makes {len(vectors[0])}-dimensional vectors, not {req.dimensions}",
            hint="leave dimensions out",
            param="dimensions",
        )
    data = []
    for i, vec in enumerate(vectors):
        value: Any = vec
        if req.encoding_format == "base64":
            value = base64.b64encode(np.asarray(vec, dtype="<f4").tobytes()).decode("ascii")
        data.append({"object": "embedding", "index": i, "embedding": value})
    tokens = sum(count_tokens(t) for t in strings)
    return {
        "object": "list",
        "data": data,
        "model": req.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


__all__ = ["KnowledgeBase", "router"]
