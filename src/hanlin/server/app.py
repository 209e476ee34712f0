"""The FastAPI application: ``create_app(settings)`` wires the routes, auth, errors, CORS and
the web UI, with one gateway per app (closed at shutdown)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from hanlin import __version__
from hanlin.access.apikeys import APIKeys
from hanlin.access.auth import Authenticator, check_startup, keys_required, open_apikeys
from hanlin.config import Settings, load_settings
from hanlin.conversations import open_conversations
from hanlin.evals import open_eval_store
from hanlin.knowledge.pool import KnowledgeBases
from hanlin.models.gateway import Gateway
from hanlin.prompts import prompt_library
from hanlin.server import browser, errors
from hanlin.server.agentruns import AgentRuns
from hanlin.server.auth import CallerContext
from hanlin.server.durable_jobs import DurableJobManager
from hanlin.server.evalruns import EvalRuns
from hanlin.server.flowruns import WorkflowRuns
from hanlin.server.jobs import JobManager
from hanlin.server.limits import BodyLimit, MiB
from hanlin.server.routes import (
    agents,
    compute,
    connections,
    conversations,
    evals,
    ingest,
    kb,
    openai,
    prompts,
    traces,
    workflow_authoring,
    workflows,
)
from hanlin.server.state import ServerState
from hanlin.tracing import open_trace_store

STATIC_DIR = Path(__file__).resolve().parent.parent / "web" / "static"
DESCRIPTION = """Hanlin's HTTP API: OpenAI-compatible chat, embeddings and models under `/v1`
(use any OpenAI client; `model: "kb:<name>"` answers from a knowledge base with citations,
`model: "agent:<name>"` runs an agent, `model: "workflow:<name>"` runs a workflow), agent runs
with SSE events and approvals under `/v1/agents`, workflows, their runs, human-input forms and
webhooks under `/v1/workflows`, knowledge-base, evaluation and compute-planner routes under
`/api`, and the admin's provider connections under `/api/settings/connections`. Errors are
`{"error": {"message", "type", "hint", "code", "params"}}`: `code` is stable and `params` holds
the values the message is made of, for clients that word errors in their own language. See
docs/server.md."""


def apikey_store(settings: Settings) -> APIKeys:
    """The API keys of these settings: the app directory's key file, or the database's."""
    return open_apikeys(settings)


def create_app(
    settings: Settings | None = None, *, knowledge_bases: Collection[str] | None = None
) -> FastAPI:
    """The server app. ``knowledge_bases`` limits which ones are served (``--kb``).

    Raises :class:`hanlin.errors.ConfigError` when keys are required (``server.require_keys``,
    or a non-loopback ``server.host``) and none exists.
    """
    settings = settings or load_settings()
    store = apikey_store(settings)
    server = settings.server
    check_startup(server.host, server.require_keys, store)
    writer_settings = settings.model_copy(
        update={
            "knowledge": settings.knowledge.model_copy(
                update={"allow_private_urls": server.allow_private_urls}
            )
        }
    )
    kbs = KnowledgeBases(settings, knowledge_bases)
    state = ServerState(
        settings=settings,
        writer_settings=writer_settings,
        gateway=Gateway(settings),
        kbs=kbs,
        # with database_url: job records in PostgreSQL, work on the queue (`hanlin worker`)
        jobs=(DurableJobManager if settings.database_url else JobManager)(writer_settings, kbs),
        auth=Authenticator(store, keys_required(server.host, server.require_keys)),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.jobs.bind(asyncio.get_running_loop())
        app.state.workflow_runs.start()  # resume the runs a stopped process left running
        resuming = asyncio.create_task(app.state.eval_runs.resume_on_start(state.gateway))
        try:
            yield
        finally:
            await asyncio.wait({resuming})
            await app.state.workflow_runs.aclose()
            await asyncio.to_thread(state.jobs.join, 10.0)
            await asyncio.to_thread(app.state.eval_runs.join, 10.0)
            app.state.evals.close()
            state.kbs.close()
            app.state.conversations.close()
            app.state.traces.close()
            await state.gateway.aclose()

    app = FastAPI(
        title="Hanlin",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.hanlin = state
    app.state.agent_runs = AgentRuns()
    app.state.workflow_runs = WorkflowRuns(settings, state.gateway, state.auth)
    app.state.conversations = open_conversations(settings)
    app.state.traces = open_trace_store(settings)
    app.state.prompts = prompt_library(settings)
    app.state.evals = open_eval_store(settings)
    app.state.eval_runs = EvalRuns(app.state.evals)
    errors.install(app)
    app.add_middleware(BodyLimit, max_bytes=server.max_json_mb * MiB)
    app.add_middleware(CallerContext, auth=state.auth)
    if server.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=server.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    browser.install(app, server)  # outermost: foreign hosts and cross-site requests stop here
    app.include_router(openai.router)
    app.include_router(kb.router)
    app.include_router(ingest.router)
    app.include_router(compute.router)
    app.include_router(agents.router)
    app.include_router(conversations.router)
    app.include_router(connections.router)
    app.include_router(traces.router)
    app.include_router(prompts.router)
    app.include_router(evals.router)
    app.include_router(workflow_authoring.router)  # before /{name}: /nodes is no name
    app.include_router(workflows.router)

    @app.get("/api/health", tags=["health"], summary="Liveness, version and local model load")
    async def health() -> dict[str, Any]:
        """``status`` is ``busy`` while a local model's queue is full (new calls get 429);
        ``local_models`` lists each loaded local model's running and waiting calls."""
        from hanlin.models.providers.llamacpp_models import local_model_load

        load = local_model_load()
        full = any(m["running"] + m["waiting"] > m["limit"] for m in load.values())
        return {"status": "busy" if full else "ok", "version": __version__, "local_models": load}

    if STATIC_DIR.is_dir():
        app.mount("/", StaticFiles(directory=STATIC_DIR, html=True), name="ui")
    return app
