"""``/api/kb/{name}/…`` ingestion: upload files, add URLs, sync, re-embed — background jobs with
per-file (re-embed: per-chunk) progress, polled (``/jobs``) or streamed (``/events``)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from hanlin.access.auth import Principal
from hanlin.errors import InvalidInputError, NotFoundError, Reason
from hanlin.knowledge.reembed import embedder_choice, embedder_choices
from hanlin.knowledge.uploads import upload_dir
from hanlin.net.ssrf import BlockedURLError, FetchError, check_url
from hanlin.server import sse, uploads
from hanlin.server.auth import kb_scope
from hanlin.server.errors import ApiError
from hanlin.server.jobs import FileState, Job, abspath
from hanlin.server.jsonbody import JSONRoute
from hanlin.server.state import ServerState, get_state

router = APIRouter(prefix="/api/kb", tags=["knowledge bases"], route_class=JSONRoute)
Read = Depends(kb_scope("kb:read"))
Write = Depends(kb_scope("kb:write"))


class AddUrls(BaseModel):
    model_config = ConfigDict(extra="forbid")

    urls: list[str] = Field(min_length=1, max_length=100)


class Reembed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="embedding model (GET /api/kb/{name}/embedders); default: the knowledge "
        "base's own, at its installed version",
    )


_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"}}
                    },
                }
            }
        },
    }
}


def _accepted(job: Job, sizes: dict[str, int] | None = None) -> JSONResponse:
    files = [f.to_dict() | {"size": (sizes or {}).get(f.upload_id or "", 0)} for f in job.files]
    return JSONResponse({"job": job.id, "status": job.status, "files": files}, status_code=202)


@router.post(
    "/{name}/files",
    status_code=202,
    summary="Upload files (multipart field 'files'); ingested in the background",
    openapi_extra=_UPLOAD_BODY,
    response_model=None,
)
async def upload_files(
    name: str, request: Request, state: ServerState = Depends(get_state), caller: Principal = Write
) -> JSONResponse:
    state.kbs.check(name)
    server = state.settings.server
    received = await uploads.receive(
        request,
        upload_dir(state.settings, name),
        max_file=server.max_upload_mb * uploads.MiB,
        max_request=server.max_request_mb * uploads.MiB,
        max_files=server.max_upload_files,
    )
    files = [
        FileState(
            r.upload_id,
            r.filename,
            status="failed" if r.reason else "queued",
            reason=r.reason,
            key=abspath(r.path) if r.path else "",
        )
        for r in received
    ]
    job = state.jobs.submit(name, "files", files)
    return _accepted(job, {r.upload_id: r.size for r in received})


@router.post("/{name}/urls", status_code=202, summary="Add URLs (fetched through the SSRF guard)")
async def add_urls(
    name: str, body: AddUrls, state: ServerState = Depends(get_state), caller: Principal = Write
) -> JSONResponse:
    state.kbs.check(name)
    allow = state.settings.server.allow_private_urls
    files = []
    for url in dict.fromkeys(u.strip() for u in body.urls):
        state_ = FileState("url_" + secrets.token_hex(6), url, key=url)
        try:
            await asyncio.to_thread(check_url, url, allow_private=allow)
        except (BlockedURLError, FetchError) as exc:
            state_.status, state_.reason = "failed", Reason.of(exc)
        files.append(state_)
    return _accepted(state.jobs.submit(name, "urls", files))


@router.post("/{name}/sync", status_code=202, summary="Re-scan every source in the background")
async def sync_kb(
    name: str, state: ServerState = Depends(get_state), caller: Principal = Write
) -> JSONResponse:
    state.kbs.check(name)
    job = state.jobs.submit(name, "sync", [])
    return JSONResponse({"job": job.id, "status": job.status}, status_code=202)


@router.get(
    "/{name}/embedders",
    summary="The embedding models a re-embed can use, each tried here (available, or why not)",
)
async def list_embedders(
    name: str, state: ServerState = Depends(get_state), caller: Principal = Read
) -> dict[str, Any]:
    state.kbs.check(name)
    info = await state.kbs.run(name, lambda kb: kb.embedding_model)
    choices = await asyncio.to_thread(embedder_choices, state.kbs.embedder)
    return {"current": info, "data": [c.to_dict() for c in choices]}


@router.post(
    "/{name}/reembed",
    status_code=202,
    summary="Re-embed every chunk in the background (progress in chunks; cancellable); the "
    "knowledge base switches to the new model only when every chunk has its vector",
)
async def reembed_kb(
    name: str, body: Reembed, state: ServerState = Depends(get_state), caller: Principal = Write
) -> JSONResponse:
    state.kbs.check(name)
    if body.model is not None:  # refused now rather than by a job that fails at once
        choice = await asyncio.to_thread(embedder_choice, body.model, state.kbs.embedder)
        if not choice.available:
            raise InvalidInputError(
                f"the embedding model '{body.model}' cannot run here: {choice.reason}",
                hint=(f"{choice.hint}; " if choice.hint else "")
                + "GET /api/kb/{name}/embedders lists the models that can",
                param="model",
                code="embedder_unavailable",
                params={"model": body.model, "reason": choice.reason},
            )
    job = state.jobs.submit(name, "reembed", [], model=body.model)
    return JSONResponse(job.summary(), status_code=202)


@router.get(
    "/{name}/jobs", summary="Recent ingestion jobs, newest first (files counted per status)"
)
async def list_jobs(
    name: str, state: ServerState = Depends(get_state), caller: Principal = Read
) -> dict[str, Any]:
    state.kbs.check(name)
    return {"data": [j.summary() for j in reversed(state.jobs.jobs(name))]}


def _job(state: ServerState, name: str, job: str) -> Job:
    found = state.jobs.get(name, job)
    if found is None:
        raise NotFoundError(f"no job '{job}' for '{name}'", hint="see GET /api/kb/{name}/jobs")
    return found


@router.get("/{name}/jobs/{job}", summary="One job with a page of its per-file status")
async def get_job(
    name: str,
    job: str,
    offset: int = Query(0, ge=0),
    limit: int = Query(100, ge=1, le=1000),
    state: ServerState = Depends(get_state),
    caller: Principal = Read,
) -> dict[str, Any]:
    return _job(state, name, job).page(offset, limit)


@router.post(
    "/{name}/jobs/{job}/cancel",
    status_code=202,
    summary="Cancel a job: it stops after the current file; the files left are marked cancelled",
)
async def cancel_job(
    name: str, job: str, state: ServerState = Depends(get_state), caller: Principal = Write
) -> dict[str, Any]:
    found = _job(state, name, job)
    if not state.jobs.cancel(found):
        raise ApiError(
            409,
            f"job '{job}' already finished ({found.status})",
            hint="only a running job can be cancelled; run a sync to re-ingest its files",
            type="conflict_error",
            code="job_finished",
        )
    return found.summary()


@router.get(
    "/{name}/events",
    summary="Server-sent events: job and per-file status changes",
    response_class=sse.EventStream,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def job_events(
    name: str, state: ServerState = Depends(get_state), caller: Principal = Read
) -> Response:
    state.kbs.check(name)
    queue = state.jobs.subscribe(name)

    async def body() -> AsyncIterator[bytes]:
        for job in state.jobs.jobs(name):
            if job.status == "running":
                yield sse.event(job.summary(), "job")
        while True:
            try:
                kind, data = await asyncio.wait_for(queue.get(), 15.0)
            except TimeoutError:
                yield sse.KEEPALIVE
                continue
            yield sse.event(data, kind)

    async def unsubscribe() -> None:
        state.jobs.unsubscribe(name, queue)

    return sse.response(body(), unsubscribe)
