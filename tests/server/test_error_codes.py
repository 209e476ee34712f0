"""Errors carry a stable ``code`` and the ``params`` their message is made of, so the web UI can
say them in Chinese: checked against a real server for each kind of error a user meets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest

from hanlin.config import PriceSettings, Settings
from hanlin.server.app import create_app
from hanlin.testing.recordings import openai_error
from hanlin.testing.upstream import UpstreamServer
from tests.server.conftest import MODEL, LiveServer, build_kb, wait_job


@pytest.fixture()
def http(fresh_settings: Callable[..., Settings]) -> Iterator[httpx.Client]:
    settings = fresh_settings(max_upload_mb=1)
    build_kb(settings, "docs").close()
    live = LiveServer(create_app(settings))
    with httpx.Client(base_url=live.url, timeout=60) as client:
        yield client
    live.stop()


def _error(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    error: dict[str, Any] = resp.json()["error"]
    return error


def test_not_found_exists_and_invalid_input(http: httpx.Client) -> None:
    missing = _error(http.get("/api/kb/nope"), 404)
    assert missing["code"] == "kb_not_found" and missing["params"] == {"kb": "nope"}
    exists = _error(http.post("/api/kb", json={"name": "docs"}), 409)
    assert exists["code"] == "kb_exists" and exists["params"] == {"kb": "docs"}
    bad = _error(http.post("/api/kb", json={"name": "../x"}), 422)
    assert bad["code"] == "invalid_kb_name" and bad["params"]["name"] == "../x"
    doc = _error(http.delete("/api/kb/docs/documents", params={"doc": "nothing.md"}), 404)
    assert doc["code"] == "document_not_found"
    assert doc["params"] == {"kb": "docs", "document": "nothing.md"}
    model = _error(
        http.post(
            "/v1/chat/completions",
            json={"model": "fake-typo/x", "messages": [{"role": "user", "content": "hi"}]},
        ),
        404,
    )
    assert model["code"] == "model_not_found" and model["params"]["model"] == "fake-typo/x"
    # the OpenAI shape stays what the official client parses
    with pytest.raises(openai.NotFoundError) as caught:
        openai.OpenAI(
            base_url=f"{str(http.base_url).rstrip('/')}/v1", api_key="x"
        ).chat.completions.create(model="fake-typo/x", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.code == "model_not_found"


def test_model_errors(http: httpx.Client, upstream: UpstreamServer) -> None:
    no_key = _error(
        http.post(
            "/v1/chat/completions",
            json={
                "model": "deepseek/deepseek-chat",
                "messages": [{"role": "user", "content": "hi"}],
            },
        ),
        401,
    )
    assert no_key["code"] == "missing_provider_key"
    assert no_key["params"] == {"provider": "deepseek", "variable": "DEEPSEEK_API_KEY"}
    upstream.app.script(
        "/v1/chat/completions",
        openai_error(429, "rate_limit_exceeded", "slow down", **{"Retry-After": "7"}),
    )
    limited = _error(
        http.post(
            "/v1/chat/completions",
            json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
        ),
        429,
    )
    assert limited["code"] == "rate_limit_exceeded" and limited["params"]["retry_after"] == 7


def test_budget_exceeded(fresh_settings: Callable[..., Settings]) -> None:
    settings = fresh_settings()
    settings.models.budgets.daily_usd = 0.0
    settings.models.prices[MODEL] = PriceSettings(input=1.0, output=1.0)
    live = LiveServer(create_app(settings))
    try:
        with httpx.Client(base_url=live.url, timeout=60) as http:
            over = _error(
                http.post(
                    "/v1/chat/completions",
                    json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
                ),
                402,
            )
        assert over["code"] == "budget_exceeded" and over["params"]["limit_usd"] == 0.0
    finally:
        live.stop()


def test_upload_failures_carry_reason_codes(http: httpx.Client) -> None:
    too_big = _error(
        http.post("/api/kb/docs/files", files={"files": ("big.txt", b"a" * (1 << 20 + 1))}), 413
    )
    assert too_big["code"] == "file_too_large"
    assert too_big["params"] == {"file": "big.txt", "limit_mb": 1.0}
    accepted = http.post(
        "/api/kb/docs/files",
        files=[
            ("files", ("tool.exe", b"MZ\x90\x00")),
            ("files", ("fake.pdf", b"hello, not a pdf")),
            ("files", ("empty.md", b"")),
        ],
    )
    assert accepted.status_code == 202, accepted.text
    files = {f["filename"]: f for f in accepted.json()["files"]}
    assert files["tool.exe"]["reason_code"] == "unsupported_file_type"
    assert files["tool.exe"]["reason_params"]["ext"] == ".exe"
    assert files["fake.pdf"]["reason_code"] == "content_mismatch"
    assert files["empty.md"]["reason_code"] == "empty_file"
    # a file that fails while parsing: the job's per-file reason has a code too
    broken = http.post(
        "/api/kb/docs/files", files={"files": ("broken.docx", b"PK\x03\x04 not really a zip")}
    )
    job = wait_job(http, "docs", broken.json()["job"])
    (failed,) = job["files"]
    assert failed["status"] == "failed" and failed["reason_code"] == "parse_failed"
    assert failed["reason"] and failed["reason_params"]["detail"]
