"""What a masked call leaves behind, through a real server: the trace holds placeholders, never
the phone number the caller typed; the answer (streamed or not) says what the guard did in
``hanlin.guard``; a guard model that is down answers 503 ``guard_unavailable``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hanlin.server.app import create_app
from hanlin.testing.upstream import FakeUpstream, UpstreamServer
from hanlin.tracing import setup as tracing
from tests.guard.test_gateway import echo
from tests.server.conftest import LiveServer, make_settings

PHONE = "13812345678"
MODEL = "fake/echo"


@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer(FakeUpstream(echo)) as s:
        yield s


@pytest.fixture()
def live(hanlin_home: Path, upstream: UpstreamServer) -> Iterator[LiveServer]:
    settings = make_settings(hanlin_home, upstream.url)
    # the fake listens on loopback: call it remote, so the policy masks it
    settings.guard.remote_endpoints = ["fake"]
    settings.guard.allowed_link_hosts = ["good.example"]
    server = LiveServer(create_app(settings))
    yield server
    server.stop()
    tracing.shutdown()


def _chat(live: LiveServer, text: str, **body: object) -> httpx.Response:
    msgs = [{"role": "user", "content": text}]
    return httpx.post(
        live.url + "/v1/chat/completions",
        json={"model": MODEL, "messages": msgs, **body},
        timeout=30,
    )


@pytest.mark.embedded_only  # reads the trace store's SQLite file
def test_a_masked_call_is_traced_with_placeholders_only(
    live: LiveServer, hanlin_home: Path
) -> None:
    done = _chat(live, f"call me on {PHONE}, see ![x](https://evil.example/a.png?q=1)")
    assert done.status_code == 200, done.text
    body = done.json()
    assert PHONE in body["choices"][0]["message"]["content"]  # restored for the caller
    assert body["hanlin"]["guard"] == {"masked": {"PHONE": 1}, "links_removed": 1}
    assert tracing.flush(10)
    (trace,) = httpx.get(live.url + "/api/traces").json()["traces"]
    spans = httpx.get(f"{live.url}/api/traces/{trace['trace_id']}").json()["spans"]
    attrs = spans[0]["attributes"]
    assert "<PHONE_1>" in attrs["gen_ai.input.messages"]
    assert "<PHONE_1>" in attrs["gen_ai.output.messages"]
    assert PHONE not in json.dumps(spans)
    tracing.shutdown()
    raw = b"".join(p.read_bytes() for p in hanlin_home.glob("traces.sqlite*"))
    assert raw and PHONE.encode() not in raw


def test_a_streamed_answer_ends_with_the_guard_notice(live: LiveServer) -> None:
    with httpx.stream(
        "POST",
        live.url + "/v1/chat/completions",
        json={"model": MODEL, "stream": True, "messages": [{"role": "user", "content": PHONE}]},
        timeout=30,
    ) as resp:
        assert resp.status_code == 200
        chunks = [
            json.loads(line[6:])
            for line in resp.iter_lines()
            if line.startswith("data: {") and line[6:]
        ]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert PHONE in text
    (last,) = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert last["hanlin"]["guard"] == {"masked": {"PHONE": 1}}


def test_a_guard_model_that_is_down_is_a_503_with_a_hint(
    hanlin_home: Path, upstream: UpstreamServer
) -> None:
    settings = make_settings(hanlin_home, upstream.url)
    settings.guard.remote_endpoints = ["fake"]
    settings.guard.model = "fake/llamaguard"  # the echo upstream answers, but not a verdict
    server = LiveServer(create_app(settings))
    try:
        resp = _chat(server, "hello")
        assert resp.status_code == 503
        error = resp.json()["error"]
        assert error["code"] == "guard_unavailable"
        assert "model_failure" in json.dumps(error)
    finally:
        server.stop()
        tracing.shutdown()
