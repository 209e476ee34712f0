"""``hanlin kb jobs`` and ``hanlin kb cancel``: the ingestion jobs of a running ``hanlin serve``
(uploads, URLs and syncs started over HTTP or in the web UI), through its HTTP API."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from hanlin.config import load_settings
from hanlin.errors import HanlinError, NotFoundError

out = Console()
err = Console(stderr=True)

Server = Annotated[
    str | None,
    typer.Option("--server", help="the server's URL (default: server.host/port of hanlin.toml)"),
]


def _call(server: str | None, method: str, path: str, **params: Any) -> dict[str, Any]:
    """One API call; HANLIN_API_KEY is sent as the bearer key when it is set."""
    import httpx  # here, not at the top: `kb jobs` shares its group with `kb sync` and friends

    if server is None:
        s = load_settings().server
        host = "127.0.0.1" if s.host in ("0.0.0.0", "::", "") else s.host
        server = f"http://{host}:{s.port}"
    key = os.environ.get("HANLIN_API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        resp = httpx.request(
            method, server.rstrip("/") + path, params=params, headers=headers, timeout=30.0
        )
    except httpx.HTTPError as exc:
        raise HanlinError(
            f"cannot reach the server at {server}: {exc}",
            hint="start it with `hanlin serve`, or pass --server URL",
        ) from None
    body: dict[str, Any] = resp.json() if resp.content else {}
    if resp.status_code >= 400:
        error = body.get("error") or {}
        cls = NotFoundError if resp.status_code == 404 else HanlinError
        raise cls(error.get("message") or f"HTTP {resp.status_code}", hint=error.get("hint"))
    return body


def _counts(job: dict[str, Any]) -> str:
    return ", ".join(f"{n} {status}" for status, n in sorted(job["counts"].items())) or "-"


def jobs(
    name: str,
    job: Annotated[str | None, typer.Argument(help="show this job's files")] = None,
    offset: Annotated[int, typer.Option(help="first file shown (with a job)")] = 0,
    limit: Annotated[int, typer.Option(help="files shown (with a job), at most 1000")] = 100,
    server: Server = None,
) -> None:
    """Recent ingestion jobs of a knowledge base on a running server, or one job's files."""
    if job is None:
        table = Table("job", "kind", "status", "files", title=f"jobs of {name}")
        for j in _call(server, "GET", f"/api/kb/{name}/jobs")["data"]:
            table.add_row(j["job"], j["kind"], j["status"], _counts(j))
        out.print(table)
        return
    page = _call(server, "GET", f"/api/kb/{name}/jobs/{job}", offset=offset, limit=limit)
    err.print(f"{page['job']} ({page['kind']}): {page['status']} — {_counts(page)}")
    table = Table("file", "status", "chunks", "reason")
    for f in page["files"]:
        table.add_row(f["filename"], f["status"], str(f["chunks"]), f["reason"] or "")
    out.print(table)
    shown = page["offset"] + len(page["files"])
    if shown < page["total"]:
        err.print(f"files {page['offset'] + 1}–{shown} of {page['total']}: --offset {shown}")


def cancel(name: str, job: str, server: Server = None) -> None:
    """Cancel a running job: it stops after the current file; the files left are cancelled."""
    summary = _call(server, "POST", f"/api/kb/{name}/jobs/{job}/cancel")
    err.print(f"cancelling {job}: {_counts(summary)} so far; the files left will be cancelled")


__all__ = ["cancel", "jobs"]
