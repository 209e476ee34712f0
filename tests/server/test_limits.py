"""Request size limits against a real server: JSON bodies over ``server.max_json_mb`` are refused
with 413 (declared or chunked), uploads of more files than ``server.max_upload_files`` store
nothing, and big JSON bodies are parsed off the event loop so the health route stays quick."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from hanlin.config import Settings
from hanlin.server.app import create_app
from hanlin.server.jsonbody import decode

from .conftest import LiveServer, build_kb

MiB = 1 << 20
#: maximal requests in flight at once while the health route is timed (bench/health_latency.py
#: measures more, on an otherwise idle machine)
SENDERS = 2


@pytest.fixture()
def serve(fresh_settings: Callable[..., Settings]) -> Iterator[Callable[..., LiveServer]]:
    servers: list[LiveServer] = []

    def start(**server: object) -> LiveServer:
        settings = fresh_settings(**server)
        build_kb(settings).close()
        servers.append(LiveServer(create_app(settings)))
        return servers[-1]

    yield start
    for s in servers:
        s.stop()


def test_a_64_mb_json_body_is_refused_at_once_with_the_default_settings(
    serve: Callable[..., LiveServer],
) -> None:
    live = serve()
    body = b'{"query": "' + b"x" * (64 * MiB) + b'"}'
    with httpx.Client(base_url=live.url, timeout=60) as client:
        started = time.monotonic()
        resp = client.post(
            "/api/kb/docs/search", content=body, headers={"content-type": "application/json"}
        )
        took = time.monotonic() - started
        assert resp.status_code == 413
        error = resp.json()["error"]
        assert error["code"] == "request_too_large"
        assert "4 MB" in error["message"]
        assert "server.max_json_mb" in error["hint"]
        assert took < 10, f"the refusal took {took:.1f} s"
        assert client.get("/api/health").json()["status"] == "ok"
        # the same connection and the server go on serving
        found = client.post("/api/kb/docs/search", json={"query": "oolong tea", "k": 1})
        assert found.status_code == 200


def test_a_chunked_body_without_a_length_is_counted_and_refused(
    serve: Callable[..., LiveServer],
) -> None:
    live = serve(max_json_mb=1)

    def chunks() -> Iterator[bytes]:
        yield b'{"query": "'
        for _ in range(40):
            yield b"y" * (64 << 10)  # 2.5 MB in all, no Content-Length
        yield b'"}'

    resp = httpx.post(
        live.url + "/api/kb/docs/search",
        content=chunks(),
        headers={"content-type": "application/json"},
        timeout=60,
    )
    assert resp.status_code == 413
    assert "server.max_json_mb" in resp.json()["error"]["hint"]
    assert "1 MB" in resp.json()["error"]["message"]
    assert httpx.get(live.url + "/api/health").status_code == 200


def test_big_json_under_the_limit_is_parsed_and_validated_as_usual(
    serve: Callable[..., LiveServer],
) -> None:
    live = serve()
    pad = "p" * (1 * MiB)
    with httpx.Client(base_url=live.url, timeout=60) as client:
        # over the model's own limits: the usual 422 in the error shape
        too_many = client.post("/api/kb/docs/urls", json={"urls": [pad[:100]] * 5000})
        assert too_many.status_code == 422
        assert "urls" in too_many.json()["error"]["message"]
        broken = client.post(
            "/api/kb/docs/search",
            content=b'{"query": "' + pad.encode() + b'"',
            headers={"content-type": "application/json"},
        )
        assert broken.status_code == 422
        assert broken.json()["error"]["code"] == "invalid_request"
        # a big body that fits the model reaches the route
        ok = client.post(
            "/api/kb/docs/search",
            json={"query": "oolong tea", "k": 2, "filters": {"pad": pad}},
        )
        assert ok.status_code in (200, 400), ok.text  # the filter itself may be refused


def test_a_body_of_millions_of_tiny_containers_is_refused_before_decoding(
    serve: Callable[..., LiveServer],
) -> None:
    live = serve()
    body = b'{"query": "x", "filters": {"pad": [' + b"[]," * (1_300_000) + b"[]]}}"  # 3.9 MB
    with httpx.Client(base_url=live.url, timeout=60) as client:
        started = time.monotonic()
        resp = client.post(
            "/api/kb/docs/search", content=body, headers={"content-type": "application/json"}
        )
        took = time.monotonic() - started
        assert resp.status_code == 413 and resp.json()["error"]["code"] == "body_too_complex"
        assert "100,000" in resp.json()["error"]["message"]
        assert took < 1.0, f"refusing took {took:.2f} s"


def test_decode_validates_against_the_model_off_the_loop() -> None:
    from fastapi.exceptions import RequestValidationError

    from hanlin.server.routes.ingest import AddUrls

    body = json.dumps({"urls": ["https://example.com/a"]}).encode()
    assert isinstance(decode(body, AddUrls), AddUrls)
    with pytest.raises(RequestValidationError) as info:
        decode(b'{"urls": []}', AddUrls)
    assert info.value.errors()[0]["loc"] == ("body", "urls")


def test_more_files_than_the_limit_are_refused_and_nothing_is_stored(
    serve: Callable[..., LiveServer], hanlin_home: Path
) -> None:
    live = serve()
    files = [("files", (f"note-{i}.md", f"# Note {i}\n\nText {i}.\n".encode())) for i in range(101)]
    resp = httpx.post(live.url + "/api/kb/docs/files", files=files, timeout=60)
    assert resp.status_code == 413
    error = resp.json()["error"]
    assert error["code"] == "too_many_files"
    assert "100 files" in error["message"]
    assert "server.max_upload_files" in error["hint"]
    uploads = hanlin_home / "uploads" / "docs"
    assert not uploads.exists() or not any(uploads.iterdir())
    assert httpx.get(live.url + "/api/kb/docs/jobs").json()["data"] == []
    # exactly the limit is fine
    ok = httpx.post(live.url + "/api/kb/docs/files", files=files[:100], timeout=60)
    assert ok.status_code == 202
    assert len(ok.json()["files"]) == 100


@pytest.fixture()
def server_process(fresh_settings: Callable[..., Settings], hanlin_home: Path) -> Iterator[str]:
    """``hanlin serve`` in its own process (as deployed: the test's own threads do not compete
    with the server for the interpreter lock)."""
    build_kb(fresh_settings()).close()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env = {**os.environ, "HANLIN_HOME": str(hanlin_home)}
    cmd = [sys.executable, "-m", "hanlin", "serve", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/api/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"hanlin serve did not start: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def test_health_answers_quickly_while_maximal_json_requests_are_parsed(
    server_process: str,
) -> None:
    """Just-under-limit bodies (many strings: the costly shape to decode and validate) in
    flight again and again; the health route is never stuck behind them. Decoding on the
    event loop held health for ~1.5 s; the bound here is 250 ms (p99) so a loaded CI machine
    does not fail it — the 100 ms target is measured by bench/health_latency.py."""

    class live:
        url = server_process

    url = "https://example.com/" + "a" * 12
    n = (4 * MiB - 64) // (len(url) + 4)
    body = json.dumps({"urls": [url] * n}).encode()
    assert 3.5 * MiB < len(body) < 4 * MiB
    stop = threading.Event()
    statuses: list[int] = []

    def flood() -> None:
        with httpx.Client(base_url=live.url, timeout=60) as client:
            while not stop.is_set():
                resp = client.post(
                    "/api/kb/docs/urls", content=body, headers={"content-type": "application/json"}
                )
                statuses.append(resp.status_code)

    threads = [threading.Thread(target=flood, daemon=True) for _ in range(SENDERS)]
    for t in threads:
        t.start()
    latencies = []
    try:
        with httpx.Client(base_url=live.url, timeout=10) as client:
            while len(statuses) < SENDERS:  # every sender is past its first request
                time.sleep(0.01)
            for _ in range(100):
                started = time.perf_counter()
                assert client.get("/api/health").status_code == 200
                latencies.append(time.perf_counter() - started)
                time.sleep(0.01)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert set(statuses) == {422}  # parsed, validated (over 100 URLs) and answered
    latencies.sort()
    p99 = latencies[98]
    assert p99 < 0.25, f"health p99 {p99 * 1000:.0f} ms while maximal requests were parsed"
