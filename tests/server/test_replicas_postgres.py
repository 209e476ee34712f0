"""Two `hanlin serve` replicas (each with its own HANLIN_HOME, as on separate machines) and
`hanlin worker`s sharing one PostgreSQL behave as one service; a worker killed with kill -9
mid-job leaves nothing duplicated and another worker finishes the job."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    """A `hanlin …` process with its own HANLIN_HOME and the shared database."""

    def __init__(self, home: Path, url: str, *args: str) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.log = home / "process.log"
        env = {
            **os.environ,
            "HANLIN_HOME": str(home),
            "HANLIN_DATABASE_URL": url,
            "HANLIN_KNOWLEDGE__EMBED_WORKERS": "1",
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hanlin", *args],
            env=env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Replica(Proc):
    def __init__(self, home: Path, url: str) -> None:
        self.port = _port()
        super().__init__(home, url, "serve", "--port", str(self.port))
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                httpx.get(self.base + "/api/health", timeout=2)
                return
            except httpx.HTTPError:
                assert self.proc.poll() is None, self.log.read_text()
                assert time.monotonic() < deadline, "the replica did not start"
                time.sleep(0.3)

    def get(self, path: str) -> Any:
        r = httpx.get(self.base + path, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.post(self.base + path, timeout=60, **kw)


def _worker(home: Path, url: str) -> Proc:
    return Proc(home, url, "worker", "--heartbeat", "1", "--stalled-after", "4")


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for p in started:
        p.stop()


def _wait_job(replica: Replica, kb: str, job: str, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        page = replica.get(f"/api/kb/{kb}/jobs/{job}?limit=500")
        if page["status"] != "running":
            return dict(page)
        assert time.monotonic() < deadline, page["counts"]
        time.sleep(0.5)


def test_two_replicas_and_a_worker_act_as_one_service(
    pg_url: str, tmp_path: Path, procs: list[Proc]
) -> None:
    a = Replica(tmp_path / "a", pg_url)
    b = Replica(tmp_path / "b", pg_url)
    procs += [a, b, _worker(tmp_path / "w", pg_url)]
    assert a.post("/api/kb", json={"name": "team"}).status_code == 201
    assert [k["name"] for k in b.get("/api/kb")["data"]] == ["team"]
    upload = b.post(
        "/api/kb/team/files",
        files=[("files", ("tea.md", b"# Oolong\n\nOolong tea is grown in Fujian.\n"))],
    )
    assert upload.status_code == 202, upload.text
    job = _wait_job(a, "team", upload.json()["job"])  # accepted by b, watched on a
    assert job["status"] == "done" and job["files"][0]["status"] == "done"
    # the bytes live in the database: neither replica keeps the upload on its disk
    assert not list((tmp_path / "b" / "uploads").rglob("*.md"))
    hits = a.post("/api/kb/team/search", json={"query": "where is oolong grown"}).json()
    assert "Fujian" in hits["data"][0]["text"]
    assert hits["data"][0]["source"] == "tea.md"
    docs = b.get("/api/kb/team/documents")["data"]
    assert [d["status"] for d in docs] == ["done"]


def test_a_killed_worker_leaves_no_duplicates_and_another_finishes(
    pg_url: str, tmp_path: Path, procs: list[Proc]
) -> None:
    a = Replica(tmp_path / "a", pg_url)
    procs.append(a)
    first = _worker(tmp_path / "w1", pg_url)
    procs.append(first)
    assert a.post("/api/kb", json={"name": "big"}).status_code == 201
    body = "\n\n".join(f"Paragraph {i} about topic {i % 7} and more words." for i in range(200))
    files = [("files", (f"doc{i:02}.md", f"# Doc {i}\n\n{body}\n".encode())) for i in range(24)]
    job_id = a.post("/api/kb/big/files", files=files).json()["job"]
    deadline = time.monotonic() + 240
    while True:  # kill -9 once a few files are stored and the job is mid-way
        counts = a.get(f"/api/kb/big/jobs/{job_id}")["counts"]
        if counts.get("done", 0) >= 3:
            break
        assert time.monotonic() < deadline, counts
        time.sleep(0.2)
    first.kill9()
    assert a.get(f"/api/kb/big/jobs/{job_id}")["status"] == "running"
    procs.append(_worker(tmp_path / "w2", pg_url))
    job = _wait_job(a, "big", job_id)
    assert job["status"] == "done", job["counts"]
    assert job["counts"] == {"done": 24}
    docs = a.get("/api/kb/big/documents?limit=500")["data"]
    assert len(docs) == 24 and len({d["doc"] for d in docs}) == 24
    info = a.get("/api/kb/big")
    per_doc = {d["chunks"] for d in docs}
    assert len(per_doc) == 1  # every file has the same text: the same chunk count
    assert info["chunks"] == 24 * per_doc.pop() and info["documents"] == 24


def test_ten_kill_9s_with_two_workers_leave_the_counts_of_a_clean_ingest(
    pg_url: str, tmp_path: Path, procs: list[Proc]
) -> None:
    """Two workers share four upload jobs; ten times one of them is killed with kill -9 once
    a few more files are stored, and started again (as a supervisor would). The final counts
    equal a clean ingest's, nothing is stored twice, and no row is left without its owner."""
    import psycopg

    a = Replica(tmp_path / "a", pg_url)
    procs.append(a)
    workers = [_worker(tmp_path / f"w{i}", pg_url) for i in range(2)]
    assert a.post("/api/kb", json={"name": "chaos"}).status_code == 201
    body = "\n\n".join(f"Paragraph {i} about subject {i % 5} and more." for i in range(120))
    jobs = []
    for j in range(4):
        files = [
            ("files", (f"j{j}-{i:02}.md", f"# File {j}-{i}\n\n{body}\n".encode()))
            for i in range(50)
        ]
        jobs.append(a.post("/api/kb/chaos/files", files=files).json()["job"])

    def done() -> int:
        return sum(a.get(f"/api/kb/chaos/jobs/{j}")["counts"].get("done", 0) for j in jobs)

    kills, last = 0, 0
    deadline = time.monotonic() + 400
    try:
        while kills < 10:
            now = done()
            assert now < 200, f"the ingest finished after {kills} kills: make it longer"
            assert time.monotonic() < deadline, (kills, now)
            if now >= last + 3:  # progress since the last kill: kill one mid-file
                victim = kills % 2
                workers[victim].kill9()
                workers[victim] = _worker(tmp_path / f"w{victim}-{kills}", pg_url)
                kills, last = kills + 1, now
            time.sleep(0.3)
        results = [_wait_job(a, "chaos", j, timeout=400) for j in jobs]
    finally:
        procs.extend(workers)
    assert [r["status"] for r in results] == ["done"] * 4, [r["counts"] for r in results]
    assert all(r["counts"] == {"done": 50} for r in results)
    docs = a.get("/api/kb/chaos/documents?limit=500")["data"]
    assert len(docs) == 200 and len({d["doc"] for d in docs}) == 200
    per_doc = {d["chunks"] for d in docs}
    assert len(per_doc) == 1  # the same text in every file: a clean ingest's chunk count
    info = a.get("/api/kb/chaos")
    assert info["documents"] == 200 and info["chunks"] == 200 * per_doc.pop()
    with psycopg.connect(pg_url) as conn:  # no orphans anywhere
        orphans = conn.execute(
            "SELECT (SELECT count(*) FROM kb_chunks c LEFT JOIN kb_documents d "
            "ON d.id = c.doc_id WHERE d.id IS NULL), "
            "(SELECT count(*) FROM kb_postings p LEFT JOIN kb_chunks c "
            "ON c.id = p.chunk_id WHERE c.id IS NULL), "
            "(SELECT count(*) FROM kb_chunks WHERE embedding IS NULL)"
        ).fetchone()
    assert orphans == (0, 0, 0)
