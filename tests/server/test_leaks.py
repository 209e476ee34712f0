"""Server facts do not leak: no absolute server path reaches an API client — in search results,
citations, footnotes, document lists, failure lists, knowledge-base details or job status — and
names with bidi controls are neutralised in upload names and displayed titles."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hanlin.config import Settings
from hanlin.knowledge.kb import KnowledgeBase
from hanlin.server.app import create_app
from tests.server.conftest import wait_job

RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: "report\u202efdp.exe" displays as "reportexe.pdf"
LRI, PDI = "\u2066", "\u2069"


@pytest.fixture()
def served(fresh_settings: Callable[..., Settings]) -> Iterator[tuple[TestClient, Settings]]:
    settings = fresh_settings()
    notes = settings.home / "private-user-folder" / "notes"
    (notes / "2024").mkdir(parents=True)
    (notes / "2024" / "plan.md").write_text(
        f"# Quarterly {RLO}plan{PDI}\n\nThe zeppelin hangar opens in March.\n", "utf-8"
    )
    (notes / "broken.pdf").write_bytes(b"%PDF-1.7\nthis is not really a pdf\n")
    with KnowledgeBase.create("docs", settings=settings) as kb:
        kb.add(notes)  # the CLI's way: absolute paths on the server
    with TestClient(create_app(settings)) as client:
        yield client, settings


def _no_paths(text: str, settings: Settings) -> None:
    home = str(settings.home)
    assert home not in text, f"server path leaked: {text[:2000]}"
    assert "private-user-folder" not in text


def test_cli_added_files_are_named_relative_to_their_folder(
    served: tuple[TestClient, Settings],
) -> None:
    client, settings = served
    search = client.post("/api/kb/docs/search", json={"query": "zeppelin hangar"})
    hits = search.json()["data"]
    assert hits and hits[0]["source"] == "notes/2024/plan.md"
    assert hits[0]["title"] == "Quarterly plan"  # the bidi override is gone
    assert hits[0]["heading_path"] == ["Quarterly plan"]
    assert hits[0]["metadata"]["source"] == "notes/2024/plan.md"
    assert hits[0]["doc"].startswith("notes/2024/plan.md")
    _no_paths(search.text, settings)

    docs = client.get("/api/kb/docs/documents")
    rows = docs.json()["data"]
    assert {r["source"] for r in rows} == {"notes/2024/plan.md", "notes/broken.pdf"}
    failed = [r for r in rows if r["status"] == "failed"]
    assert failed and failed[0]["reason"]
    _no_paths(docs.text, settings)

    detail = client.get("/api/kb/docs")
    body = detail.json()
    assert [s["uri"] for s in body["sources"]] == ["notes"]
    assert [f["path"] for f in body["failures"]] == ["notes/broken.pdf"]
    _no_paths(detail.text, settings)

    # a document is deleted by the public key the listing showed
    key = next(r["doc"] for r in rows if r["status"] == "done")
    assert client.delete("/api/kb/docs/documents", params={"doc": key}).status_code == 204
    assert not client.post("/api/kb/docs/search", json={"query": "zeppelin"}).json()["data"]


def test_answers_and_footnotes_cite_public_names(served: tuple[TestClient, Settings]) -> None:
    client, settings = served
    ask = client.post("/api/kb/docs/ask", json={"question": "When does the zeppelin hangar open?"})
    assert ask.status_code == 200
    citations = ask.json()["citations"]
    assert citations and citations[0]["source"] == "notes/2024/plan.md"
    _no_paths(ask.text, settings)

    chat = client.post(
        "/v1/chat/completions",
        json={
            "model": "kb:docs",
            "messages": [{"role": "user", "content": "When does the zeppelin hangar open?"}],
        },
    )
    assert chat.status_code == 200
    assert "notes/2024/plan.md" in chat.text
    _no_paths(chat.text, settings)


def test_uploads_show_their_upload_name_and_never_the_stored_path(
    served: tuple[TestClient, Settings],
) -> None:
    client, settings = served
    files = [
        (
            "files",
            (f"invoice{RLO}dm.txt", b"# Invoice\n\nThe walrus fee is 12 coins.\n", "text/plain"),
        ),
        ("files", ("scan.pdf", b"%PDF-1.4\nnot a real pdf at all\n", "application/pdf")),
    ]
    response = client.post("/api/kb/docs/files", files=files)
    assert response.status_code == 202
    names = [f["filename"] for f in response.json()["files"]]
    assert names == ["invoicedm.txt", "scan.pdf"]
    job = wait_job(client, "docs", response.json()["job"])
    _no_paths(json.dumps(job), settings)
    statuses = {f["filename"]: f["status"] for f in job["files"]}
    assert statuses == {"invoicedm.txt": "done", "scan.pdf": "failed"}

    hits = client.post("/api/kb/docs/search", json={"query": "walrus fee"}).json()["data"]
    assert hits[0]["source"] == "invoicedm.txt"
    listing = client.get("/api/kb/docs/documents")
    assert "scan.pdf" in listing.text and "invoicedm.txt" in listing.text
    _no_paths(listing.text, settings)
    _no_paths(client.get("/api/kb/docs").text, settings)


def test_the_cli_on_the_same_machine_still_shows_full_paths(
    served: tuple[TestClient, Settings],
) -> None:
    _, settings = served
    with KnowledgeBase("docs", settings) as kb:
        hit = kb.search("zeppelin hangar", k=1)[0]
    assert Path(hit.chunk.source).is_absolute()
