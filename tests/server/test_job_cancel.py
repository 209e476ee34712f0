"""Ingestion jobs over HTTP: cancelling one (queued, or in the middle of many files) leaves the
knowledge base consistent and searchable for what was done; job status is a summary plus one
page of files, however many files the job has."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hanlin.config import Settings
from hanlin.db.postgres import database
from hanlin.knowledge.kb import KnowledgeBase
from hanlin.server.app import create_app

from .conftest import LiveServer, wait_job


@pytest.fixture()
def live(fresh_settings: Callable[..., Settings]) -> Iterator[tuple[LiveServer, Settings]]:
    settings = fresh_settings()
    KnowledgeBase.create("many", settings=settings).close()
    server = LiveServer(create_app(settings))
    yield server, settings
    server.stop()


def _note(i: int) -> str:
    return f"# Note {i}\n\nThe marker of note {i} is zq{i:05d}x. It is a short note.\n"


def _folder(root: Path, n: int, start: int = 0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + n):
        (root / f"note-{i:05d}.md").write_text(_note(i), "utf-8")
    return root


def test_a_queued_upload_job_is_cancelled_and_its_files_are_not_kept(
    live: tuple[LiveServer, Settings],
) -> None:
    server, settings = live
    jobs = server.app.state.hanlin.jobs
    files = [("files", (f"n{i}.md", _note(i).encode())) for i in range(5)]
    with jobs.writer_lock("many"), httpx.Client(base_url=server.url, timeout=30) as client:
        job = client.post("/api/kb/many/files", files=files).json()["job"]
        resp = client.post(f"/api/kb/many/jobs/{job}/cancel")
        assert resp.status_code == 202
        assert resp.json()["cancel_requested"] is True
    body = wait_job(httpx.Client(base_url=server.url), "many", job)
    assert body["status"] == "cancelled"
    assert body["counts"] == {"cancelled": 5}
    assert {f["status"] for f in body["files"]} == {"cancelled"}
    assert not any((settings.home / "uploads" / "many").iterdir())
    if settings.database_url:  # uploads wait in the shared database: none is left there either
        with database(settings.database_url).connection() as conn:
            row = conn.execute("SELECT count(*) FROM hanlin_uploads WHERE kb = 'many'").fetchone()
        assert row == (0,)
    again = httpx.post(f"{server.url}/api/kb/many/jobs/{job}/cancel")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "job_finished"
    assert again.json()["error"]["hint"]
    missing = httpx.post(f"{server.url}/api/kb/many/jobs/job_nope/cancel")
    assert missing.status_code == 404


def test_cancelling_a_running_sync_stops_after_the_current_file(
    live: tuple[LiveServer, Settings], tmp_path: Path
) -> None:
    server, settings = live
    src = _folder(tmp_path / "notes", 1)
    with KnowledgeBase("many", settings) as kb:
        kb.add(src)
    _folder(src, 400, start=1)  # new files: the sync job ingests them one by one
    client = httpx.Client(base_url=server.url, timeout=30)
    job = client.post("/api/kb/many/sync").json()["job"]
    deadline = time.monotonic() + 120
    while client.get(f"/api/kb/many/jobs/{job}").json()["progress"]["total"] < 5:
        assert time.monotonic() < deadline, "the sync did not get going"
        time.sleep(0.02)
    assert client.post(f"/api/kb/many/jobs/{job}/cancel").status_code == 202
    body = wait_job(client, "many", job)
    assert body["status"] == "cancelled"
    counts: dict[str, int] = body["counts"]
    assert counts.get("cancelled", 0) > 0
    assert counts.get("failed", 0) == 0
    assert counts["done"] + counts["cancelled"] == 401
    # the pages together are every file, each once
    files: list[dict[str, Any]] = []
    while len(files) < body["total"]:
        page = client.get(f"/api/kb/many/jobs/{job}", params={"offset": len(files)}).json()
        files += page["files"]
    done = [f["filename"] for f in files if f["status"] == "done"]
    cancelled = [f["filename"] for f in files if f["status"] == "cancelled"]
    assert len(set(done) | set(cancelled)) == 401
    # the store holds exactly the files reported done, and they are searchable
    with KnowledgeBase("many", settings) as kb:
        assert kb.info().stats.documents == len(done)
        last = max(done)
        number = int(last.removeprefix("note-").removesuffix(".md"))
        hits = kb.search(f"zq{number:05d}x", k=1, mode="keyword")
        assert hits and Path(hits[0].chunk.source).name == last
        gone = int(min(cancelled).removeprefix("note-").removesuffix(".md"))
        hits = kb.search(f"zq{gone:05d}x", k=5, mode="keyword")
        assert min(cancelled) not in {Path(h.chunk.source).name for h in hits}
        # a later sync finishes the job
        report = kb.sync()
        assert not report.cancelled
        assert kb.info().stats.documents == 401


def test_job_status_is_a_summary_and_pages_of_files(
    live: tuple[LiveServer, Settings], tmp_path: Path
) -> None:
    server, settings = live
    src = _folder(tmp_path / "many", 1100)
    with KnowledgeBase("many", settings) as kb:
        kb.add(src)
    client = httpx.Client(base_url=server.url, timeout=60)
    job = client.post("/api/kb/many/sync").json()["job"]  # every file unchanged: quick
    body = wait_job(client, "many", job, timeout=120)
    assert body["status"] == "done"
    assert body["counts"] == {"done": 1100}
    assert body["total"] == 1100 and len(body["files"]) == 100
    listing = client.get("/api/kb/many/jobs")
    assert "files" not in listing.json()["data"][0]
    assert len(listing.content) < 2000
    page = client.get(f"/api/kb/many/jobs/{job}", params={"offset": 1050, "limit": 1000})
    assert len(page.json()["files"]) == 50
    assert len(client.get(f"/api/kb/many/jobs/{job}").content) < 20_000
    too_big = client.get(f"/api/kb/many/jobs/{job}", params={"limit": 1001})
    assert too_big.status_code == 422


def test_queued_jobs_are_never_forgotten_only_the_oldest_finished_ones(
    live: tuple[LiveServer, Settings],
) -> None:
    """The server keeps the last 50 finished jobs per knowledge base; a burst of 55 uploads
    queued behind a busy writer must all stay visible until they finish."""
    server, _ = live
    jobs = server.app.state.hanlin.jobs
    with httpx.Client(base_url=server.url, timeout=30) as client:
        with jobs.writer_lock("many"):  # another ingest holds the knowledge base
            ids = [
                client.post(
                    "/api/kb/many/files", files=[("files", (f"b{i}.md", _note(i).encode()))]
                ).json()["job"]
                for i in range(55)
            ]
            status = {client.get(f"/api/kb/many/jobs/{j}").status_code for j in ids}
            assert status == {200}  # all 55 queued, none dropped
        for j in ids:
            assert wait_job(client, "many", j)["status"] == "done"
        extra = client.post(
            "/api/kb/many/files", files=[("files", ("last.md", _note(99).encode()))]
        ).json()["job"]
        assert wait_job(client, "many", extra)["status"] == "done"
        assert client.get(f"/api/kb/many/jobs/{ids[0]}").status_code == 404  # oldest finished
        assert client.get(f"/api/kb/many/jobs/{ids[-1]}").status_code == 200


@pytest.mark.slow
def test_a_stopped_server_exits_promptly_with_a_burst_of_jobs_queued(tmp_path: Path) -> None:
    """Ctrl-C on `hanlin serve` while 20 upload jobs are queued: the running job stops after
    its current file and the queued ones are cancelled, so the process exits in seconds
    instead of ingesting everything first."""
    import os
    import signal
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "HANLIN_HOME": str(tmp_path / "home")}
    env.pop("HANLIN_DATABASE_URL", None)
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hanlin", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                httpx.get(base + "/api/health", timeout=2)
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.3)
        assert httpx.post(base + "/api/kb", json={"name": "burst"}).status_code == 201
        body = "\n\n".join(f"Paragraph {i} on subject {i % 9}." for i in range(300))
        for j in range(20):
            files = [("files", (f"f{j}-{i}.md", f"# {j}-{i}\n\n{body}".encode())) for i in range(5)]
            assert httpx.post(f"{base}/api/kb/burst/files", files=files, timeout=60).is_success
        proc.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        proc.wait(30)
        assert time.monotonic() - t0 < 20
    finally:
        if proc.poll() is None:
            proc.kill()
