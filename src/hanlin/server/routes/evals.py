"""``/api/evals``: evaluation datasets and runs — list and read datasets (versions, examples,
import reports), import one from an upload (JSONL / CSV) or from rated traces; list and read
runs (aggregates with intervals, per-example results a page at a time), start one in the
background and follow its progress, stop and resume it; compare two runs; the HTML report of a
run or a pair. Everything needs the ``admin`` scope: datasets and results hold questions,
answers and retrieved text. The library is :mod:`hanlin.evals`; runs execute on this server
(:mod:`hanlin.server.evalruns`)."""

from __future__ import annotations

import asyncio
import re
import tempfile
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from hanlin.access.auth import Principal
from hanlin.errors import ConflictError, NotFoundError, reason_fields
from hanlin.evals.base import EvalStore, RunInfo, find_run
from hanlin.evals.browse import (
    Outcome,
    comparison_json,
    dataset_page,
    metrics_catalog,
    parse_ref,
    result_rows,
    run_json,
)
from hanlin.evals.imports import Imported, dataset_type_problem, read_upload, store_loaded
from hanlin.server import uploads
from hanlin.server.auth import scope
from hanlin.server.errors import ApiError
from hanlin.server.evalruns import EvalRuns
from hanlin.server.jsonbody import JSONRoute
from hanlin.server.state import ServerState, get_state
from hanlin.tracing import TraceQuery, TraceStore

router = APIRouter(prefix="/api/evals", tags=["evaluations"], route_class=JSONRoute)
Admin = Depends(scope("admin"))
#: an agent target names an agent, never a file (the server reads no file a client names)
_AGENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
#: the report page has inline styles and no script at all
REPORT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


def evals(request: Request) -> EvalStore:
    """FastAPI dependency: the app's evaluation store."""
    store: EvalStore = request.app.state.evals
    return store


def eval_runs(request: Request) -> EvalRuns:
    runs: EvalRuns = request.app.state.eval_runs
    return runs


Store = Depends(evals)
Runs = Depends(eval_runs)


class FromTraces(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, description="the dataset's name")
    rated: Literal["up", "down"] | None = Field(
        default=None, description="up: rated-up answers become gold; down: rated-down only"
    )
    since_ns: int | None = Field(default=None, ge=0, description="traces started since")
    model: str | None = Field(default=None, max_length=300)
    kb: str | None = Field(default=None, max_length=64)
    q: str | None = Field(default=None, max_length=200, description="text in the trace")
    limit: int = Field(default=500, ge=1, le=5000, description="at most this many examples")


class StartRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(
        min_length=1, max_length=120, description="a stored dataset: NAME or NAME@VERSION"
    )
    target: str = Field(
        min_length=1, max_length=300, description="kb:NAME (RAG answers), agent:NAME or a model"
    )
    metrics: list[str] | None = Field(
        default=None,
        max_length=50,
        description="metric names or groups (GET /api/evals/metrics); default: every metric "
        "the target can produce",
    )
    limit: int | None = Field(default=None, ge=1, le=1_000_000, description="the first N only")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    judge: str | None = Field(
        default=None, min_length=1, max_length=300, description="a chat model judging answers"
    )
    model: str | None = Field(
        default=None, min_length=1, max_length=300, description="kb targets: the generator"
    )


_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


# -- datasets --------------------------------------------------------------------------------


@router.get("/datasets", summary="Datasets with their versions, row counts and skipped rows")
async def list_datasets(store: EvalStore = Store, _: Principal = Admin) -> dict[str, Any]:
    infos = await asyncio.to_thread(store.datasets)
    grouped: dict[str, list[dict[str, Any]]] = {}
    for info in infos:
        data = info.model_dump(mode="json", exclude={"report": {"problems"}})
        grouped.setdefault(info.name, []).append(data | {"ref": info.ref})
    return {"data": [{"name": n, "versions": v} for n, v in grouped.items()]}


@router.post(
    "/datasets",
    status_code=201,
    summary="Import a dataset file (multipart field 'file': .jsonl or .csv) as a new version",
    openapi_extra=_UPLOAD_BODY,
    response_model=None,
)
async def import_dataset(
    request: Request,
    name: str | None = Query(None, max_length=100, description="default: the file's name"),
    store: EvalStore = Store,
    state: ServerState = Depends(get_state),
    _: Principal = Admin,
) -> JSONResponse:
    """201 with the new version and the rows skipped; 200 when identical content was stored
    already (that version). A file without one usable row is 400 ``no_usable_examples``."""
    server = state.settings.server
    with tempfile.TemporaryDirectory(prefix="hanlin-eval-upload-") as folder:
        received = await uploads.receive(
            request,
            Path(folder),
            max_file=server.max_upload_mb * uploads.MiB,
            max_request=server.max_request_mb * uploads.MiB,
            max_files=1,
            field="file",
            accept=dataset_type_problem,
        )
        item = received[0]
        if item.reason is not None or item.path is None:
            fields = reason_fields(item.reason)
            raise ApiError(
                400,
                f"'{item.filename}' cannot be imported: {item.reason}",
                hint="upload a .jsonl or .csv dataset (docs/evals.md, Datasets)",
                code=fields["reason_code"],
                params={"file": item.filename, **(fields["reason_params"] or {})},
            )
        path, shown = item.path, item.filename
        imported = await asyncio.to_thread(
            lambda: store_loaded(store, read_upload(path, shown), name)
        )
    return JSONResponse(_imported(imported), status_code=201 if imported.created else 200)


@router.post(
    "/datasets/from-traces",
    status_code=201,
    summary="Build a dataset from traces: their questions, rated-up answers as gold",
    response_model=None,
)
async def import_from_traces(
    body: FromTraces, request: Request, store: EvalStore = Store, _: Principal = Admin
) -> JSONResponse:
    from hanlin.evals.from_traces import dataset_from_traces

    traces: TraceStore = request.app.state.traces
    query = TraceQuery(
        since_ns=body.since_ns,
        model=body.model,
        kb=body.kb,
        rating=None if body.rated is None else (1 if body.rated == "up" else -1),
        text=body.q,
    )

    def build() -> Imported:
        loaded = dataset_from_traces(traces, query, limit=body.limit, name=body.name)
        return store_loaded(store, loaded, body.name)

    imported = await asyncio.to_thread(build)
    return JSONResponse(_imported(imported), status_code=201 if imported.created else 200)


def _imported(imported: Imported) -> dict[str, Any]:
    info = imported.info
    return {
        "dataset": info.model_dump(mode="json") | {"ref": info.ref},
        "created": imported.created,
        "report": imported.report.model_dump(mode="json"),
    }


@router.get("/datasets/{name}", summary="A dataset version, its versions and a page of examples")
async def get_dataset(
    name: str,
    version: int | None = Query(None, ge=1, le=2**31 - 1, description="default: the newest"),
    offset: int = Query(0, ge=0, le=10_000_000),
    limit: int = Query(50, ge=1, le=500),
    store: EvalStore = Store,
    _: Principal = Admin,
) -> dict[str, Any]:
    """``name`` may also be ``NAME@VERSION``; the import report lists the rows skipped."""
    base, at = parse_ref(name)
    dataset = await asyncio.to_thread(store.dataset, base, version or at)
    return await asyncio.to_thread(dataset_page, store, dataset, offset=offset, limit=limit)


@router.get("/metrics", summary="Every metric: group, meaning, direction, whether it is judged")
async def list_metrics(_: Principal = Admin) -> dict[str, Any]:
    return metrics_catalog()


# -- runs ------------------------------------------------------------------------------------


def _with_live(data: dict[str, Any], runs: EvalRuns) -> dict[str, Any]:
    live = runs.live(data["id"])
    return data | {"live": live.summary() if live else None}


@router.get("/runs", summary="Runs, newest first, with their aggregates and progress")
async def list_runs(
    limit: int = Query(50, ge=1, le=500),
    store: EvalStore = Store,
    runs: EvalRuns = Runs,
    _: Principal = Admin,
) -> dict[str, Any]:
    found = await asyncio.to_thread(store.runs, limit)
    return {"data": [_with_live(r.model_dump(mode="json"), runs) for r in found]}


@router.post("/runs", status_code=202, summary="Start a run in the background", response_model=None)
async def start_run(
    body: StartRun,
    store: EvalStore = Store,
    runs: EvalRuns = Runs,
    state: ServerState = Depends(get_state),
    _: Principal = Admin,
) -> JSONResponse:
    """The run is recorded and checked (dataset, target, metrics, judge) before the answer;
    its examples are then answered and scored one by one: follow ``done`` / ``total`` with
    ``GET /api/evals/runs/{run}``."""
    from hanlin.evals.runner import prepare_run

    name, version = parse_ref(body.dataset)
    if body.target.startswith("kb:"):
        state.kbs.check(body.target[3:])
    elif body.target.startswith("agent:"):
        agent = body.target[6:]
        if not _AGENT.fullmatch(agent) or agent.endswith((".yaml", ".yml")):
            raise NotFoundError(
                f"no agent named '{agent}'",
                hint="agents are named by GET /v1/agents (files in HANLIN_HOME/agents/NAME.yaml)",
            )

    def prepare() -> Any:
        dataset = store.dataset(name, version)
        return prepare_run(
            store,
            dataset,
            body.target,
            state.gateway,
            metrics=body.metrics or None,
            limit=body.limit,
            name=body.name,
            judge=body.judge,
            model=body.model,
        )

    plan = await asyncio.to_thread(prepare)
    runs.start(plan)
    return JSONResponse(_with_live(plan.run.model_dump(mode="json"), runs), status_code=202)


async def _run(store: EvalStore, ref: str) -> RunInfo:
    return await asyncio.to_thread(find_run, store, ref)


@router.get("/runs/{run}", summary="A run: aggregates with 95% intervals, progress, latencies")
async def get_run(
    run: str, store: EvalStore = Store, runs: EvalRuns = Runs, _: Principal = Admin
) -> dict[str, Any]:
    """``run`` is an id (``r-…``) or a name (its newest run); ``latency_histogram`` bins the
    latencies of the answered examples."""
    found = await _run(store, run)
    data = await asyncio.to_thread(run_json, store, found, histogram=True)
    return _with_live(data, runs)


@router.get("/runs/{run}/results", summary="A page of a run's per-example results, filtered")
async def get_results(
    run: str,
    q: str | None = Query(None, max_length=200, description="text in id, question or output"),
    outcome: Outcome | None = Query(None, description="failed, refused or answered"),
    metric: str | None = Query(None, max_length=64, description="examples this metric scored"),
    below: float | None = Query(None, description="with metric: scored below this"),
    offset: int = Query(0, ge=0, le=10_000_000),
    limit: int = Query(50, ge=1, le=500),
    store: EvalStore = Store,
    _: Principal = Admin,
) -> dict[str, Any]:
    found = await _run(store, run)
    return await asyncio.to_thread(
        lambda: result_rows(
            store,
            found,
            q=q,
            outcome=outcome,
            metric=metric,
            below=below,
            offset=offset,
            limit=limit,
        )
    )


@router.post("/runs/{run}/cancel", status_code=202, summary="Stop a run after its example")
async def cancel_run(
    run: str, store: EvalStore = Store, runs: EvalRuns = Runs, _: Principal = Admin
) -> JSONResponse:
    """The run stops after the example in hand (on whichever replica runs it) and is left
    ``interrupted``; what was scored stays. A run that is not running is 409."""
    found = await _run(store, run)
    if found.status != "running":
        raise ConflictError(
            f"run {found.id} is not running ({found.status})",
            hint="only a running run can be stopped",
            code="run_not_running",
            params={"run": found.id, "status": found.status},
        )
    runs.stop(found.id)
    updated = await asyncio.to_thread(store.update_run, found.id, status="interrupted")
    return JSONResponse(_with_live(updated.model_dump(mode="json"), runs), status_code=202)


@router.post("/runs/{run}/resume", status_code=202, summary="Finish a stopped or failed run")
async def resume_run(
    run: str,
    store: EvalStore = Store,
    runs: EvalRuns = Runs,
    state: ServerState = Depends(get_state),
    _: Principal = Admin,
) -> JSONResponse:
    """Same dataset version, target, metrics and judge; the examples already scored are kept,
    those that failed are tried again. A run still running (here or on another replica: stop
    it first) is 409."""
    from hanlin.evals.runner import reopen_run

    found = await _run(store, run)
    _not_running(found, runs)
    plan = await asyncio.to_thread(reopen_run, store, found.id, state.gateway)
    runs.start(plan)
    return JSONResponse(_with_live(plan.run.model_dump(mode="json"), runs), status_code=202)


@router.delete("/runs/{run}", status_code=204, summary="Delete a run and its results")
async def delete_run(
    run: str, store: EvalStore = Store, runs: EvalRuns = Runs, _: Principal = Admin
) -> Response:
    found = await _run(store, run)
    _not_running(found, runs)
    await asyncio.to_thread(store.delete_run, found.id)
    return Response(status_code=204)


def _not_running(run: RunInfo, runs: EvalRuns) -> None:
    if run.status == "running" or runs.live(run.id) is not None:
        raise ConflictError(
            f"run {run.id} is still running",
            hint=f"stop it first: POST /api/evals/runs/{run.id}/cancel (it stops after the "
            "example in hand)",
            code="run_running",
            params={"run": run.id},
        )


# -- comparison and report -------------------------------------------------------------------


@router.get("/compare", summary="Run B against run A: per-metric deltas with paired intervals")
async def compare(
    a: str = Query(min_length=1, max_length=200, description="the baseline run (id or name)"),
    b: str = Query(min_length=1, max_length=200, description="the run compared against it"),
    top: int = Query(20, ge=0, le=500, description="changed examples listed"),
    store: EvalStore = Store,
    _: Principal = Admin,
) -> dict[str, Any]:
    """Examples are paired by id; a metric's ``verdict`` is ``better`` / ``worse`` when its
    95% interval excludes 0 (by the metric's direction), else ``same``. ``changed`` lists the
    examples whose [0, 1] scores moved most, with both outputs."""
    from hanlin.evals.compare import compare_runs

    return await asyncio.to_thread(
        lambda: comparison_json(compare_runs(store, a, b, top=top), store)
    )


@router.get(
    "/report",
    summary="The self-contained HTML report of a run, or of run b compared against run a",
    response_class=HTMLResponse,
)
async def report(
    a: str = Query(min_length=1, max_length=200, description="a run (id or name)"),
    b: str | None = Query(None, min_length=1, max_length=200, description="a second run"),
    download: bool = Query(False, description="as an attachment (a file to save)"),
    store: EvalStore = Store,
    _: Principal = Admin,
) -> HTMLResponse:
    from hanlin.evals.report import render_report

    page = await asyncio.to_thread(render_report, store, a, b)
    ids = [(await _run(store, ref)).id for ref in (a, b) if ref]
    filename = f"eval-report-{'-vs-'.join(ids)}.html"
    disposition = "attachment" if download else "inline"
    return HTMLResponse(
        page,
        headers={
            "Content-Security-Policy": REPORT_CSP,
            "Content-Disposition": f'{disposition}; filename="{filename}"',
        },
    )


__all__ = ["router"]
