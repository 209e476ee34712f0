"""``/api/traces``: the traces of every model call, search, answer and tool call — list with
filters, one trace's spans, the dashboard's per-day statistics, the tracer's health — and
feedback (thumbs up/down + comment) on a trace. Reading traces needs the ``admin`` scope (they
hold every caller's prompts); any caller with ``chat`` may rate a trace made with its own key.
The store is :mod:`hanlin.tracing`."""

from __future__ import annotations

import asyncio
import re
from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from hanlin.access.auth import Principal
from hanlin.errors import AccessDeniedError, InvalidInputError, NotFoundError
from hanlin.server.auth import scope
from hanlin.server.jsonbody import JSONRoute
from hanlin.tracing import TraceQuery, TraceStore

router = APIRouter(prefix="/api/traces", tags=["traces"], route_class=JSONRoute)
Admin = Depends(scope("admin"))
Chat = Depends(scope("chat"))
_ID = re.compile(r"^[0-9a-f]{32}$")


def traces(request: Request) -> TraceStore:
    store: TraceStore = request.app.state.traces
    return store


Store = Depends(traces)


class Rating(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rating: Literal[1, -1] | None = Field(description="1 = thumbs up, -1 = down, null clears")
    comment: str | None = Field(default=None, max_length=4000)


def _cursor(before: str | None) -> tuple[int, str] | None:
    if not before:
        return None
    m = re.fullmatch(r"(\d+):([0-9a-f]{32})", before)
    if not m:
        raise InvalidInputError("bad cursor", hint="pass the `next` value of the previous page")
    return int(m.group(1)), m.group(2)


@router.get("", summary="Traces, newest first, with filters")
async def list_traces(
    since_ns: int | None = Query(None, ge=0),
    until_ns: int | None = Query(None, ge=0),
    model: str | None = Query(None, max_length=300),
    kb: str | None = Query(None, max_length=64),
    key_id: str | None = Query(None, max_length=64),
    status: Literal["ok", "error"] | None = None,
    rating: Literal["1", "-1"] | None = Query(None, description="1 = thumbs up, -1 = down"),
    q: str | None = Query(None, max_length=200),
    limit: int = Query(50, ge=1, le=500),
    before: str | None = Query(None, max_length=60),
    store: TraceStore = Store,
    _: Principal = Admin,
) -> dict[str, Any]:
    query = TraceQuery(
        since_ns=since_ns,
        until_ns=until_ns,
        model=model,
        kb=kb,
        key_id=key_id,
        status=status,
        rating=None if rating is None else (1 if rating == "1" else -1),
        text=q,
        limit=limit,
        before=_cursor(before),
    )
    page = await asyncio.to_thread(store.list_traces, query)
    last = page[-1] if len(page) == limit else None
    return {
        "traces": [asdict(t) for t in page],
        "next": f"{last.start_ns}:{last.trace_id}" if last else None,
    }


@router.get("/stats", summary="Requests, tokens, cost, latency p50/p95 and errors per day")
async def stats(
    by: Literal["model", "kb", "key_id", "none"] = "model",
    since_ns: int | None = Query(None, ge=0),
    spans: Literal["root", "llm"] = "llm",
    store: TraceStore = Store,
    _: Principal = Admin,
) -> dict[str, Any]:
    rows = await asyncio.to_thread(store.stats, by, since_ns, spans)
    return {"by": by, "spans": spans, "rows": [asdict(r) for r in rows]}


@router.get("/status", summary="Spans stored, and spans dropped or lost by this replica")
async def status(store: TraceStore = Store, _: Principal = Admin) -> dict[str, Any]:
    from hanlin.tracing.setup import counters

    count = await asyncio.to_thread(store.count)
    sinks = {
        name: {
            "written": c.written,
            "dropped": c.dropped,
            "failed": c.failed,
            "error": c.last_error,
        }
        for name, c in counters().items()
    }
    return {"spans": count, "sinks": sinks}


@router.get("/{trace_id}", summary="Every span of one trace, and the trace as the list shows it")
async def get_trace(trace_id: str, store: TraceStore = Store, _: Principal = Admin) -> dict:
    spans = await asyncio.to_thread(store.get_trace, _checked(trace_id))
    if not spans:
        raise NotFoundError(f"no trace {trace_id}", hint="list them with GET /api/traces")
    # the list row (totals, rating, comment): the traces that started at the first span's ns
    start = min(s.start_ns for s in spans)
    query = TraceQuery(since_ns=start, until_ns=start + 1, limit=500)
    rows = await asyncio.to_thread(store.list_traces, query)
    summary = next((asdict(t) for t in rows if t.trace_id == trace_id), None)
    return {"trace_id": trace_id, "summary": summary, "spans": [asdict(s) for s in spans]}


@router.post("/{trace_id}/rating", summary="Thumbs up/down and a comment on a trace")
async def rate(
    trace_id: str, body: Rating, store: TraceStore = Store, caller: Principal = Chat
) -> dict[str, Any]:
    tid = _checked(trace_id)
    if not caller.access.can("admin"):
        spans = await asyncio.to_thread(store.get_trace, tid)
        if spans and all(s.key_id != caller.access.user for s in spans):
            raise AccessDeniedError(
                "this trace was made with another API key",
                hint="rate traces of your own calls, or use an admin key",
                code="insufficient_scope",
                params={"scope": "admin"},
            )
    if not await asyncio.to_thread(store.rate, tid, body.rating, body.comment):
        raise NotFoundError(f"no trace {trace_id}", hint="list them with GET /api/traces")
    return {"trace_id": tid, "rating": body.rating, "comment": body.comment}


def _checked(trace_id: str) -> str:
    if not _ID.match(trace_id):
        raise InvalidInputError(
            f"{trace_id!r} is not a trace id", hint="a trace id is 32 lower-case hex digits"
        )
    return trace_id
