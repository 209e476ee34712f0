"""Deleting a failed upload (its failure, its source and its stored bytes: a sync no longer
retries it) and re-embedding as a background job with progress and cancel, over the API."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hanlin.config import Settings
from hanlin.models.embeddings.base import EMBEDDERS
from hanlin.server.app import create_app
from tests.conftest import kept_uploads
from tests.knowledge import reembed_helpers
from tests.server.conftest import TEA, build_kb, wait_job

BROKEN_PDF = b"%PDF-1.4\n" + b"this is no PDF body at all\n" * 20
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 64


@pytest.fixture()
def settings(fresh_settings: Callable[..., Settings]) -> Settings:
    s = fresh_settings()
    build_kb(s).close()  # "docs": three small documents, fast-use
    return s


@pytest.fixture()
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def upload(client: TestClient, files: list[tuple[str, bytes]]) -> dict[str, Any]:
    parts = [("files", (name, data)) for name, data in files]
    resp = client.post("/api/kb/docs/files", files=parts)
    assert resp.status_code == 202, resp.text
    body: dict[str, Any] = resp.json()
    return body


def failed_rows(client: TestClient) -> list[dict[str, Any]]:
    rows = client.get("/api/kb/docs/documents").json()["data"]
    return [r for r in rows if r["status"] == "failed"]


def test_a_failed_upload_is_deleted_and_no_sync_retries_it(
    client: TestClient, settings: Settings
) -> None:
    accepted = upload(client, [("broken.pdf", BROKEN_PDF), ("tea2.md", TEA.encode())])
    wait_job(client, "docs", accepted["job"])
    (row,) = failed_rows(client)
    assert row["source"] == "broken.pdf" and row["file"].startswith("up_")
    stored = f"{row['file']}.pdf"
    assert stored in kept_uploads(settings.home, "docs")
    assert client.get("/api/kb/docs").json()["failures"][0]["path"] == "broken.pdf"

    assert client.delete("/api/kb/docs/failed", params={"file": row["file"]}).status_code == 204
    assert failed_rows(client) == []
    shown = client.get("/api/kb/docs").json()
    assert shown["failures"] == [] and "broken.pdf" not in str(shown["sources"])
    assert stored not in kept_uploads(settings.home, "docs"), "deleted with its failure"
    sync = wait_job(client, "docs", client.post("/api/kb/docs/sync").json()["job"])
    assert sync["status"] == "done" and sync["counts"].get("failed", 0) == 0
    assert failed_rows(client) == []  # not retried, not listed
    assert [r["source"] for r in client.get("/api/kb/docs/documents").json()["data"]].count(
        "tea2.md"
    ) == 1

    again = client.delete("/api/kb/docs/failed", params={"file": row["file"]})
    assert again.status_code == 404 and "GET /api/kb/{name}" in again.json()["error"]["hint"]


def test_an_upload_refused_at_once_is_deleted_from_the_list(client: TestClient) -> None:
    accepted = upload(client, [("report.txt", EXE)])
    assert accepted["files"][0]["status"] == "failed"
    (row,) = failed_rows(client)
    assert row["file"] == accepted["files"][0]["upload_id"]
    assert client.delete("/api/kb/docs/failed", params={"file": row["file"]}).status_code == 204
    assert failed_rows(client) == []


def test_deleting_a_file_that_did_not_fail_says_what_to_do(client: TestClient) -> None:
    rows = client.get("/api/kb/docs/documents").json()["data"]
    tea = next(r["source"] for r in rows if r["title"] == "Oolong tea")
    assert tea == "src-docs/tea.md"  # public: relative to the folder it was added from
    stored = client.delete("/api/kb/docs/failed", params={"file": tea})
    assert stored.status_code == 409
    error = stored.json()["error"]
    assert "did not fail" in error["message"] and "documents" in error["hint"]
    missing = client.delete("/api/kb/docs/failed", params={"file": "nothing.pdf"})
    assert missing.status_code == 404 and "failed" in missing.json()["error"]["message"]
    assert client.delete("/api/kb/nokb/failed", params={"file": "x"}).status_code == 404


@pytest.fixture()
def hashed_words() -> Iterator[None]:
    reembed_helpers.register(delay=0.2)  # a real small model, slow enough to watch
    yield
    EMBEDDERS.unregister(reembed_helpers.NAME)


def add_chunks(client: TestClient, settings: Settings, n: int = 24) -> None:
    """Enough chunks for several re-embed batches (8 chunks each with hashed-words)."""
    files = [
        (f"note{i}.md", f"# Note {i}\n\nPebble {i} rests by river {i}.\n".encode())
        for i in range(n)
    ]
    wait_job(client, "docs", upload(client, files)["job"])


def test_reembed_runs_as_a_job_with_progress_and_switches_when_done(
    client: TestClient, settings: Settings, hashed_words: None
) -> None:
    listed = client.get("/api/kb/docs/embedders").json()
    current = listed["current"]  # the model the knowledge base was created with
    assert current != reembed_helpers.NAME
    choices = {c["name"]: c for c in listed["data"]}
    assert choices["fast-use"]["available"] and choices[reembed_helpers.NAME]["dim"] == 64
    for name, choice in choices.items():  # the ones that cannot run say why
        assert choice["available"] or (choice["reason"] and name != "fast-use")

    bad = client.post("/api/kb/docs/reembed", json={"model": "no-such-model"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "model"
    assert client.get("/api/kb/docs").json()["embedding_model"] == current

    resp = client.post("/api/kb/docs/reembed", json={"model": reembed_helpers.NAME})
    assert resp.status_code == 202 and resp.json()["kind"] == "reembed"
    job = wait_job(client, "docs", resp.json()["job"])
    assert job["status"] == "done", job
    progress = job["progress"]
    assert progress["unit"] == "chunks" and progress["done"] == progress["total"] > 0
    assert client.get("/api/kb/docs").json()["embedding_model"] == reembed_helpers.NAME
    hits = client.post("/api/kb/docs/search", json={"query": "oolong Fujian", "mode": "dense"})
    assert hits.json()["data"][0]["title"] == "Oolong tea"


def test_a_cancelled_reembed_leaves_the_knowledge_base_as_it_was(
    client: TestClient, settings: Settings, hashed_words: None
) -> None:
    add_chunks(client, settings)
    before = client.post("/api/kb/docs/search", json={"query": "oolong", "mode": "dense"}).json()
    model = client.get("/api/kb/docs").json()["embedding_model"]
    job = client.post("/api/kb/docs/reembed", json={"model": reembed_helpers.NAME}).json()
    deadline = time.monotonic() + 60
    while client.get(f"/api/kb/docs/jobs/{job['job']}").json()["progress"]["done"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    cancel = client.post(f"/api/kb/docs/jobs/{job['job']}/cancel")
    assert cancel.status_code == 202
    done = wait_job(client, "docs", job["job"])
    assert done["status"] == "cancelled" and done["progress"]["done"] < done["progress"]["total"]
    assert client.get("/api/kb/docs").json()["embedding_model"] == model
    after = client.post("/api/kb/docs/search", json={"query": "oolong", "mode": "dense"}).json()
    assert after == before
