"""The knowledge-base API as the web UI drives it: create, upload, poll, list, search, ask,
delete — plus URLs, sync, live job events, compute routes, errors and CORS."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from hanlin.access.auth import open_apikeys
from hanlin.config import Settings
from hanlin.server.app import create_app
from tests.conftest import kept_uploads
from tests.server.conftest import GARDEN, TEA, LiveServer, build_kb, wait_job

EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 64


def _upload(client: Any, kb: str, files: list[tuple[str, bytes]]) -> Any:
    return client.post(
        f"/api/kb/{kb}/files",
        files=[("files", (name, data, "application/octet-stream")) for name, data in files],
    )


def test_create_list_show_and_delete(client: TestClient) -> None:
    made = client.post("/api/kb", json={"name": "notes"})
    assert made.status_code == 201 and made.json()["name"] == "notes"
    assert made.json()["embedding_model"] == "fast-use"
    again = client.post("/api/kb", json={"name": "notes"})
    assert again.status_code == 409 and again.json()["error"]["hint"]
    bad = client.post("/api/kb", json={"name": "../etc"})
    assert (
        bad.status_code == 422 and "invalid knowledge-base name" in bad.json()["error"]["message"]
    )
    listed = client.get("/api/kb").json()["data"]
    assert [k["name"] for k in listed] == ["notes"] and listed[0]["documents"] == 0
    shown = client.get("/api/kb/notes").json()
    assert shown["sources"] == [] and shown["failures"] == []
    assert client.delete("/api/kb/notes").status_code == 204
    gone = client.get("/api/kb/notes")
    assert gone.status_code == 404 and "GET /api/kb" in gone.json()["error"]["hint"]


def test_upload_poll_documents_search_and_delete(
    client: TestClient, fresh_settings: Callable[..., Settings]
) -> None:
    home = fresh_settings().home
    client.post("/api/kb", json={"name": "kb1"})
    resp = _upload(
        client,
        "kb1",
        [("tea.md", TEA.encode()), ("garden.txt", GARDEN.encode()), ("report.pdf", EXE)],
    )
    assert resp.status_code == 202
    accepted = resp.json()
    by_name = {f["filename"]: f for f in accepted["files"]}
    assert by_name["tea.md"]["status"] == "queued" and by_name["tea.md"]["size"] == len(TEA)
    assert by_name["report.pdf"]["status"] == "failed"
    assert "Windows executable" in by_name["report.pdf"]["reason"]

    job = wait_job(client, "kb1", accepted["job"])
    assert job["status"] == "done" and job["progress"] == {"done": 3, "total": 3}
    statuses = {f["filename"]: (f["status"], f["chunks"]) for f in job["files"]}
    assert statuses["tea.md"][0] == "done" and statuses["tea.md"][1] >= 1
    assert statuses["garden.txt"][0] == "done"
    assert client.get("/api/kb/kb1/jobs").json()["data"][0]["job"] == accepted["job"]

    docs = client.get("/api/kb/kb1/documents").json()
    assert docs["total"] == 3
    rows = {r["source"]: r for r in docs["data"]}
    assert rows["report.pdf"]["status"] == "failed" and rows["report.pdf"]["reason"]
    assert rows["tea.md"]["status"] == "done" and rows["tea.md"]["title"] == "Oolong tea"
    assert rows["garden.txt"]["title"] == "garden"  # the upload's name, not its stored id
    page = client.get("/api/kb/kb1/documents", params={"limit": 1, "offset": 1}).json()
    assert page["total"] == 3 and len(page["data"]) == 1

    hits = client.post("/api/kb/kb1/search", json={"query": "oolong tea Fujian", "k": 3}).json()
    top = hits["data"][0]
    assert top["title"] == "Oolong tea" and set(top["scores"]) == {"dense", "keyword"}
    assert top["source"] == "tea.md", "results name the upload, not where the server stores it"
    answer = client.post("/api/kb/kb1/ask", json={"question": "Where does oolong tea come from?"})
    cited = [c["source"] for c in answer.json()["citations"]]
    assert cited and all(s in ("tea.md", "garden.txt") for s in cited)
    assert not any(str(home) in e["citation"]["source"] for e in answer.json()["evidence"])
    assert top["score"] >= hits["data"][-1]["score"]
    keyword = client.post("/api/kb/kb1/search", json={"query": "tomatoes", "mode": "keyword"})
    assert set(keyword.json()["data"][0]["scores"]) == {"keyword"}

    tea_doc = rows["tea.md"]["doc"]
    assert tea_doc == "tea.md"  # the public key: no stored path on the server
    assert len(kept_uploads(home, "kb1")) == 2  # the refused .pdf was never kept
    assert client.delete(f"/api/kb/kb1/documents/{tea_doc}").status_code == 204
    garden_doc = rows["garden.txt"]["doc"]
    assert client.delete("/api/kb/kb1/documents", params={"doc": garden_doc}).status_code == 204
    missing = client.delete("/api/kb/kb1/documents", params={"doc": garden_doc})
    assert missing.status_code == 404
    after = client.get("/api/kb/kb1/documents").json()["data"]
    assert [r["status"] for r in after] == ["failed"]
    assert kept_uploads(home, "kb1") == []  # a deleted upload's bytes go with it
    assert not client.post("/api/kb/kb1/search", json={"query": "oolong"}).json()["data"]

    assert client.delete("/api/kb/kb1").status_code == 204
    assert not (home / "uploads" / "kb1").exists() and not (home / "kb" / "kb1").exists()


def test_ask_whole_and_streamed(client: TestClient) -> None:
    client.post("/api/kb", json={"name": "kb2"})
    wait_job(client, "kb2", _upload(client, "kb2", [("tea.md", TEA.encode())]).json()["job"])
    answer = client.post("/api/kb/kb2/ask", json={"question": "Where is oolong grown?"}).json()
    assert answer["mode"] == "extractive" and "Fujian" in answer["text"]
    assert answer["citations"][0]["title"] == "Oolong tea"
    with client.stream(
        "POST", "/api/kb/kb2/ask", json={"question": "Where is oolong grown?", "stream": True}
    ) as resp:
        raw = resp.read().decode()
    names = [line[7:] for line in raw.splitlines() if line.startswith("event: ")]
    assert names[0] == "retrieval" and "delta" in names and names[-1] == "done"
    empty = client.post("/api/kb/kb2/ask", json={"question": "   "})
    assert empty.status_code == 400 and empty.json()["error"]["hint"]


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<html><head><title>Pu-erh</title></head><body><article><h1>Pu-erh</h1>"
        body += b"<p>Pu-erh is a fermented tea from Yunnan province.</p></article></body></html>"
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def page_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/puerh.html"
    server.shutdown()


def test_urls_are_refused_when_private_unless_allowed(
    fresh_settings: Callable[..., Settings], page_url: str
) -> None:
    with TestClient(create_app(fresh_settings())) as client:
        client.post("/api/kb", json={"name": "web"})
        resp = client.post(
            "/api/kb/web/urls",
            json={"urls": [page_url, "http://169.254.169.254/latest/meta-data", "file:///etc/x"]},
        )
        files = resp.json()["files"]
        assert resp.status_code == 202 and [f["status"] for f in files] == ["failed"] * 3
        assert "loopback" in files[0]["reason"] and "metadata" in files[1]["reason"]
        assert "http and https" in files[2]["reason"]
    with TestClient(create_app(fresh_settings(allow_private_urls=True))) as client:
        job = client.post("/api/kb/web/urls", json={"urls": [page_url]}).json()
        done = wait_job(client, "web", job["job"])
        assert done["status"] == "done" and done["files"][0]["status"] == "done"
        hit = client.post("/api/kb/web/search", json={"query": "fermented Yunnan"}).json()
        assert hit["data"][0]["source"] == page_url
        sync = client.post("/api/kb/web/sync")
        assert sync.status_code == 202
        synced = wait_job(client, "web", sync.json()["job"])
        assert synced["status"] == "done" and synced["files"][0]["filename"] == page_url


def test_events_stream_file_and_job_status(fresh_settings: Callable[..., Settings]) -> None:
    server = LiveServer(create_app(fresh_settings()))
    seen: list[tuple[str, dict[str, Any]]] = []
    try:
        httpx.post(server.url + "/api/kb", json={"name": "ev"})
        ready = threading.Event()

        def listen() -> None:
            with httpx.stream("GET", server.url + "/api/kb/ev/events", timeout=30) as resp:
                ready.set()
                name = ""
                for line in resp.iter_lines():
                    if line.startswith("event: "):
                        name = line[7:]
                    elif line.startswith("data: "):
                        seen.append((name, json.loads(line[6:])))
                        if name == "job" and seen[-1][1]["status"] != "running":
                            return

        thread = threading.Thread(target=listen, daemon=True)
        thread.start()
        assert ready.wait(10)
        time.sleep(0.2)
        files = [("files", ("tea.md", TEA.encode(), "text/markdown"))]
        httpx.post(server.url + "/api/kb/ev/files", files=files, timeout=30)
        thread.join(60)
    finally:
        server.stop()
    statuses = [d["status"] for n, d in seen if n == "file"]
    assert statuses == ["parsing", "embedding", "done"]
    assert seen[-1][0] == "job" and seen[-1][1]["status"] == "done"


def test_compute_routes(client: TestClient) -> None:
    gpus = client.get("/api/compute/gpus").json()["data"]
    assert any(g["name"].startswith("H100") for g in gpus)
    train = client.post(
        "/api/compute/train", json={"model": "llama3-8b", "tokens": "15T", "gpu": "H100"}
    ).json()
    assert train["training"]["gpu_days"] > 1000 and train["memory"]["terms"]
    serve = client.post(
        "/api/compute/serve", json={"model": "llama3-8b", "gpu": "A100-80G", "context": "8k"}
    )
    assert serve.status_code == 200 and serve.json()["fits"] is True
    tune = client.post("/api/compute/finetune", json={"model": "llama3-8b", "gpu": "H100"})
    assert tune.json()["memory"]["trainable_params"] > 0
    path = client.post("/api/compute/serve", json={"model": "/etc/passwd", "gpu": "H100"})
    assert path.status_code == 400 and "file path" in path.json()["error"]["message"]
    assert client.get("/api/compute/models").json()["data"]


def test_errors_health_ui_and_cors(
    client: TestClient, fresh_settings: Callable[..., Settings]
) -> None:
    assert client.get("/api/health").json()["status"] == "ok"
    invalid = client.post("/api/kb/x/search", json={"query": ""})
    err = invalid.json()["error"]
    assert invalid.status_code == 422 and err["hint"] and "query" in err["message"]
    missing = client.post("/api/kb/nosuch/search", json={"query": "x"})
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
    home = client.get("/")
    assert home.status_code == 200 and "<html" in home.text.lower()
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    assert (
        "access-control-allow-origin" not in client.options("/v1/models", headers=preflight).headers
    )
    assert (
        "access-control-allow-origin"
        not in client.get("/v1/models", headers={"Origin": "https://evil.example"}).headers
    )
    with TestClient(create_app(fresh_settings(cors_origins=["https://ui.example"]))) as cors:
        ok = cors.get("/v1/models", headers={"Origin": "https://ui.example"})
        assert ok.headers["access-control-allow-origin"] == "https://ui.example"


def test_document_chunks_by_public_key_and_scoped_keys(
    fresh_settings: Callable[..., Settings],
) -> None:
    settings = fresh_settings(require_keys=True)
    build_kb(settings, "a").close()
    build_kb(settings, "b").close()
    store = open_apikeys(settings)
    _, reader_a = store.create(["kb:read"], kbs=["a"])
    auth = {"Authorization": f"Bearer {reader_a}"}
    with TestClient(create_app(settings)) as client:
        docs = client.get("/api/kb/a/documents", headers=auth).json()["data"]
        tea = next(d for d in docs if d["source"].endswith("tea.md"))
        assert not tea["doc"].startswith("/")  # the public key, no server path
        got = client.get("/api/kb/a/documents/chunks", params={"doc": tea["doc"]}, headers=auth)
        assert got.status_code == 200
        chunks = got.json()["data"]
        assert len(chunks) == tea["chunks"] and [c["ord"] for c in chunks] == sorted(
            c["ord"] for c in chunks
        )
        assert "Oolong" in " ".join(c["text"] for c in chunks)
        assert set(chunks[0]) == {
            "ord",
            "text",
            "heading_path",
            "page",
            "page_end",
            "char_start",
            "char_end",
        }
        assert str(settings.home) not in got.text
        missing = client.get("/api/kb/a/documents/chunks", params={"doc": "nope.md"}, headers=auth)
        assert missing.status_code == 404 and missing.json()["error"]["hint"]
        other = client.get("/api/kb/b/documents/chunks", params={"doc": tea["doc"]}, headers=auth)
        assert other.status_code == 403
