"""``/api/kb``: knowledge bases — create, list, show, delete; documents; search; ask (RAG).
Ingestion (uploads, URLs, sync, jobs, events) is in :mod:`hanlin.server.routes.ingest`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from hanlin.access.auth import Principal
from hanlin.errors import InvalidInputError, NotFoundError, reason_fields
from hanlin.knowledge.display import SourceNames, clean_text
from hanlin.knowledge.failures import forget_failed, public_id
from hanlin.knowledge.kb import KnowledgeBase
from hanlin.knowledge.uploads import upload_dir
from hanlin.prompts.base import LABEL_RE
from hanlin.rag.base import AnswerDelta, RagEvent, RetrievalEvent
from hanlin.rag.engine import RagEngine
from hanlin.server import sse
from hanlin.server.auth import kb_scope, principal
from hanlin.server.errors import ApiError, error_event
from hanlin.server.jsonbody import JSONRoute
from hanlin.server.state import ServerState, get_state

router = APIRouter(prefix="/api/kb", tags=["knowledge bases"], route_class=JSONRoute)
Read = Depends(kb_scope("kb:read"))
Write = Depends(kb_scope("kb:write"))
Admin = Depends(kb_scope("admin"))


class CreateKB(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    embedding_model: str | None = None


class SearchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=4000)
    mode: Literal["hybrid", "dense", "keyword"] = "hybrid"
    k: int = Field(default=10, ge=1, le=100)
    filters: dict[str, Any] | None = None


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: str


class AskBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=4000)
    model: str | None = None
    history: list[Turn] | None = None
    mode: Literal["auto", "generative", "extractive"] = "auto"
    k: int | None = Field(default=None, ge=1, le=100)
    filters: dict[str, Any] | None = None
    stream: bool = False
    prompt_label: str | None = Field(
        default=None,
        pattern=LABEL_RE.pattern,
        description="read the answer's prompts (rag.answer.en …) at this label "
        "(default: prompts.kb_labels, else prompts.label)",
    )


@router.get("", summary="List knowledge bases")
async def list_kbs(
    state: ServerState = Depends(get_state), caller: Principal = Depends(principal)
) -> dict[str, Any]:
    caller.require("kb:read")
    data = []
    for name in state.kbs.names():
        if caller.can_kb(name):
            with_info = await state.kbs.run(name, KnowledgeBase.info)
            data.append(with_info.summary())
    return {"data": data}


@router.post("", status_code=201, summary="Create a knowledge base")
async def create_kb(
    body: CreateKB, state: ServerState = Depends(get_state), caller: Principal = Depends(principal)
) -> dict[str, Any]:
    caller.require("kb:write", kb=body.name)
    if not state.kbs.visible(body.name):
        raise ApiError(
            403,
            "this server serves only the knowledge bases "
            + ", ".join(sorted(state.kbs.only or ())),
            hint="restart `hanlin serve` without --kb to manage others",
            type="permission_error",
        )

    def create() -> dict[str, Any]:
        with KnowledgeBase.create(
            body.name, embedding_model=body.embedding_model, settings=state.settings
        ) as kb:
            return kb.info().summary()

    try:
        return await asyncio.to_thread(create)
    except (InvalidInputError, NotFoundError) as exc:
        code = exc.code or ("not_found" if isinstance(exc, NotFoundError) else "invalid_input")
        raise ApiError(422, exc.message, hint=exc.hint, code=code, params=exc.params) from None


@router.get("/{name}", summary="A knowledge base, its sources and failed files")
async def get_kb(
    name: str, state: ServerState = Depends(get_state), caller: Principal = Read
) -> dict[str, Any]:
    return (await state.kbs.run(name, KnowledgeBase.info)).to_dict()


async def _writer(state: ServerState, name: str, timeout: float) -> Any:
    """Hold the knowledge base's writer lock (jobs hold it while ingesting) or answer 409."""
    lock = state.jobs.writer_lock(name)
    if not await asyncio.to_thread(lock.acquire, True, timeout):
        raise ApiError(
            409,
            f"an ingestion job is writing '{name}' right now",
            hint="wait for it to finish (GET /api/kb/{name}/jobs), then retry",
            type="conflict_error",
            code="busy",
        )
    return lock


@router.delete("/{name}", status_code=204, summary="Delete a knowledge base (admin)")
async def delete_kb(
    name: str, state: ServerState = Depends(get_state), caller: Principal = Admin
) -> Response:
    state.kbs.check(name)
    lock = await _writer(state, name, 5.0)
    try:
        state.kbs.drop(name)
        await asyncio.to_thread(KnowledgeBase.remove, name, state.settings)
        state.jobs.forget(name)
    finally:
        lock.release()
    return Response(status_code=204)


@router.get("/{name}/documents", summary="Documents with status (in progress and failed first)")
async def list_documents(
    name: str,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
    state: ServerState = Depends(get_state),
    caller: Principal = Read,
) -> dict[str, Any]:
    def read(kb: KnowledgeBase) -> tuple[list[Any], list[Any], SourceNames]:
        return kb.documents(), kb.info().failures, kb.public_names()

    docs, failures, names = await state.kbs.run(name, read)
    uploads = upload_dir(state.settings, name)
    rows: list[dict[str, Any]] = []
    covered = set()
    for f in state.jobs.unfinished_files(name):
        covered.add(f.key)
        shown = names.source(f.key) if f.key else clean_text(f.filename)
        row = _row(clean_text(f.filename), shown, f.chunks, f.status, names.scrub(f.reason))
        row |= reason_fields(f.reason)  # its code, for clients that word it themselves
        if f.status == "failed":
            row["file"] = public_id(f.key, names, uploads) if f.key else f.upload_id
        rows.append(row)
    for rec in failures:
        if rec.path not in covered:
            shown = names.source(rec.path)
            row = _row(shown, shown, 0, "failed", names.scrub(rec.error))
            row["file"] = public_id(rec.path, names, uploads)
            rows.append(row)
    rows.extend(d.to_dict(names) for d in docs)
    return {"data": rows[offset : offset + limit], "total": len(rows)}


def _row(title: str, source: str, chunks: int, status: str, reason: str | None) -> dict[str, Any]:
    """A file not stored (yet) in the shape of a stored document (``DocumentRecord.to_dict``);
    a failed one also names itself for ``DELETE /api/kb/{name}/failed?file=…`` in ``file``."""
    return {
        "id": None,
        "doc": None,
        "title": title,
        "source": source,
        "format": None,
        "chunks": chunks,
        "chars": None,
        "status": status,
        "reason": reason,
        "updated_at": None,
        "file": None,
    }


@router.delete(
    "/{name}/failed",
    status_code=204,
    summary="Delete a failed file (?file= as the documents list names it): its failure record, "
    "its source and its stored upload, so no sync retries it",
)
async def delete_failed(
    name: str,
    file: str = Query(min_length=1),
    state: ServerState = Depends(get_state),
    caller: Principal = Write,
) -> Response:
    state.kbs.check(name)
    lock = await _writer(state, name, 10.0)

    def forget() -> str:
        with KnowledgeBase(name, state.settings) as kb:
            return forget_failed(kb, file).path

    try:
        path = await asyncio.to_thread(forget)
    except NotFoundError:
        # an upload refused before it was stored is known to its job alone
        if not state.jobs.forget_failed(name, upload_id=file):
            raise
        return Response(status_code=204)
    finally:
        lock.release()
        state.kbs.invalidate(name)
    state.jobs.forget_failed(name, key=path, upload_id=file)
    return Response(status_code=204)


async def _delete_document(state: ServerState, name: str, doc: str) -> Response:
    state.kbs.check(name)
    lock = await _writer(state, name, 10.0)

    def delete() -> bool:
        with KnowledgeBase(name, state.settings) as kb:
            return kb.delete_document(doc)

    try:
        deleted = await asyncio.to_thread(delete)
    finally:
        lock.release()
        state.kbs.invalidate(name)
    if not deleted:
        raise NotFoundError(
            f"no document '{doc}' in '{name}'",
            hint="list them with GET /api/kb/{name}/documents",
            code="document_not_found",
            params={"kb": name, "document": doc},
        )
    return Response(status_code=204)


@router.get("/{name}/documents/chunks", summary="A document's chunks in order (?doc=KEY)")
async def document_chunks(
    name: str,
    doc: str = Query(min_length=1),
    state: ServerState = Depends(get_state),
    caller: Principal = Read,
) -> dict[str, Any]:
    chunks = await state.kbs.run(name, lambda kb: kb.chunks(doc))
    return {"doc": doc, "data": [c.to_dict() for c in chunks]}


@router.delete("/{name}/documents", status_code=204, summary="Delete a document (?doc=KEY)")
async def delete_document_query(
    name: str,
    doc: str = Query(min_length=1),
    state: ServerState = Depends(get_state),
    caller: Principal = Write,
) -> Response:
    return await _delete_document(state, name, doc)


@router.delete("/{name}/documents/{doc:path}", status_code=204, summary="Delete a document")
async def delete_document(
    name: str, doc: str, state: ServerState = Depends(get_state), caller: Principal = Write
) -> Response:
    return await _delete_document(state, name, doc)


@router.post("/{name}/search", summary="Hybrid / dense / keyword search with per-retriever scores")
async def search(
    name: str, body: SearchBody, state: ServerState = Depends(get_state), caller: Principal = Read
) -> dict[str, Any]:
    def run(kb: KnowledgeBase) -> list[Any]:
        results = kb.search(body.query, k=body.k, mode=body.mode, filters=body.filters)
        kb.public_names().apply(results)
        return results

    results = await state.kbs.run(name, run)
    return {"data": [r.to_dict() for r in results]}


@router.post(
    "/{name}/ask",
    summary="Answer with citations (stream=true: SSE retrieval / delta / done)",
    response_model=None,
)
async def ask(
    name: str, body: AskBody, state: ServerState = Depends(get_state), caller: Principal = Read
) -> Response:
    kwargs: dict[str, Any] = {
        "model": body.model,
        "history": [t.model_dump() for t in body.history or []],
        "mode": body.mode,
        "k": body.k,
        "filters": body.filters,
        "prompt_label": body.prompt_label,
    }
    if not body.stream:
        async with state.kbs.use(name) as kb:
            answer = await RagEngine(kb, state.gateway, user=caller.user).aask(
                body.question, **kwargs
            )
        return JSONResponse(answer.to_dict())
    kb = await state.kbs.checkout(name)
    events = RagEngine(kb, state.gateway, user=caller.user).astream(body.question, **kwargs)
    try:
        first = await anext(events)  # errors before any output get a proper status
    except BaseException:
        await events.aclose()
        state.kbs.checkin(name, kb, clean=False)
        raise
    finished = False

    async def stream() -> AsyncIterator[bytes]:
        nonlocal finished
        event: RagEvent | None = first
        try:
            while event is not None:
                yield _ask_event(event)
                event = await anext(events, None)
            finished = True
        except Exception as exc:
            yield sse.event(error_event(exc), "error")

    async def release() -> None:
        await events.aclose()
        state.kbs.checkin(name, kb, clean=finished)

    return sse.response(stream(), release)


def _ask_event(event: RagEvent) -> bytes:
    if isinstance(event, RetrievalEvent):
        data = {
            "evidence": [e.to_dict() for e in event.evidence],
            "citations": [c.to_dict() for c in event.citations],
            "standalone_question": event.standalone_question,
        }
        return sse.event(data, "retrieval")
    if isinstance(event, AnswerDelta):
        return sse.event({"text": event.text}, "delta")
    return sse.event(event.answer.to_dict(), "done")
