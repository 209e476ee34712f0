"""Stopping work without losing any. Ctrl-C on `hanlin worker` in the middle of a long job: the
worker stops after the file in hand (not after the whole job), the job stays running with its
other files queued, and the next worker finishes it — every file stored once. A job no worker
has taken yet is cancelled at once by the replica, its uploads dropped."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from hanlin.db.postgres import database
from tests.server.test_replicas_postgres import Proc, Replica, _wait_job, _worker, procs

__all__ = ["procs"]  # the fixture

pytestmark = pytest.mark.slow


def test_ctrl_c_hands_the_rest_of_the_job_to_the_next_worker(
    pg_url: str, tmp_path: Path, procs: list[Proc]
) -> None:
    a = Replica(tmp_path / "a", pg_url)
    first = _worker(tmp_path / "w1", pg_url)
    procs += [a, first]
    assert a.post("/api/kb", json={"name": "long"}).status_code == 201
    body = "\n\n".join(f"Paragraph {i} about topic {i % 7} and words." for i in range(200))
    files = [("files", (f"d{i:02}.md", f"# Doc {i}\n\n{body}\n".encode())) for i in range(24)]
    job_id = a.post("/api/kb/long/files", files=files).json()["job"]
    deadline = time.monotonic() + 240
    while a.get(f"/api/kb/long/jobs/{job_id}")["counts"].get("done", 0) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.2)

    first.proc.send_signal(signal.SIGINT)
    assert first.proc.wait(60) == 0, first.log.read_text()[-3000:]
    page = a.get(f"/api/kb/long/jobs/{job_id}?limit=500")
    assert page["status"] == "running", page["counts"]  # unfinished: not cancelled, not failed
    assert set(page["counts"]) <= {"done", "queued"}, page["counts"]
    assert page["counts"].get("queued", 0) > 0, "the job was done before the worker stopped"
    assert "stopping after the current file" in first.log.read_text()

    procs.append(_worker(tmp_path / "w2", pg_url))
    job = _wait_job(a, "long", job_id)
    assert job["status"] == "done" and job["counts"] == {"done": 24}, job["counts"]
    docs = a.get("/api/kb/long/documents?limit=500")["data"]
    assert len(docs) == 24 and len({d["doc"] for d in docs}) == 24
    per_doc = {d["chunks"] for d in docs}
    assert len(per_doc) == 1
    assert a.get("/api/kb/long")["chunks"] == 24 * per_doc.pop()


def _uploads(url: str) -> int:
    with database(url).connection() as conn:
        row = conn.execute("SELECT count(*) FROM hanlin_uploads").fetchone()
    return int(row[0]) if row else 0


def test_a_queued_job_no_worker_took_is_cancelled_at_once_and_never_runs(
    pg_url: str, tmp_path: Path, procs: list[Proc]
) -> None:
    a = Replica(tmp_path / "a", pg_url)  # no worker yet: the job waits in the queue
    procs.append(a)
    assert a.post("/api/kb", json={"name": "later"}).status_code == 201
    files = [("files", (f"n{i}.md", f"# Note {i}\n\nText {i}.\n".encode())) for i in range(3)]
    job_id = a.post("/api/kb/later/files", files=files).json()["job"]
    assert _uploads(pg_url) == 3

    r = a.post(f"/api/kb/later/jobs/{job_id}/cancel")
    assert r.status_code in (200, 202), r.text
    page = a.get(f"/api/kb/later/jobs/{job_id}")  # at once: no worker had to pick it up
    assert page["status"] == "cancelled" and page["counts"] == {"cancelled": 3}, page
    assert _uploads(pg_url) == 0  # the uploads are not kept

    procs.append(_worker(tmp_path / "w", pg_url))  # a worker now finds nothing to run
    time.sleep(6)
    assert a.get(f"/api/kb/later/jobs/{job_id}")["status"] == "cancelled"
    assert a.get("/api/kb/later")["documents"] == 0
