"""Traces as a user meets them: calls made with the official ``openai`` SDK against a real
server become traces (model call spans with tokens and cost; a ``kb:`` answer as a tree of
steps), listed and rated through ``/api/traces``; secrets never reach the trace store; content
capture can be turned off; a trace store that cannot be written never fails a request."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from hanlin.config import Settings
from hanlin.server.app import apikey_store, create_app
from hanlin.testing.upstream import UpstreamServer
from hanlin.tracing import setup as tracing
from tests.server.conftest import MODEL, LiveServer, build_kb, make_settings

PROVIDER_KEY = "sk-live-" + "Q7wZ" * 8  # the fake provider's key, set in the environment


@pytest.fixture
def settings(
    hanlin_home: Path, upstream: UpstreamServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    monkeypatch.setenv("FAKE_PROVIDER_KEY", PROVIDER_KEY)
    s = make_settings(hanlin_home, upstream.url)
    s.models.endpoints["fake"].key_env = "FAKE_PROVIDER_KEY"
    yield s
    tracing.shutdown()


def _serve(settings: Settings) -> LiveServer:
    return LiveServer(create_app(settings))


def _sdk(live: LiveServer, key: str = "not-needed") -> openai.OpenAI:
    return openai.OpenAI(base_url=live.url + "/v1", api_key=key, max_retries=0)


def _traces(live: LiveServer, **params: Any) -> list[dict[str, Any]]:
    import httpx

    assert tracing.flush(10)
    r = httpx.get(live.url + "/api/traces", params=params, timeout=10)
    assert r.status_code == 200, r.text
    return list(r.json()["traces"])


@pytest.mark.embedded_only  # reads or locks the trace store's SQLite file
def test_a_gateway_call_is_one_trace_with_tokens_cost_and_no_secrets(
    settings: Settings, upstream: UpstreamServer
) -> None:
    live = _serve(settings)
    try:
        secret_line = f"my key is {PROVIDER_KEY} and my other one sk-proj-{'A1b2' * 6}"
        done = _sdk(live).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": secret_line}]
        )
        assert done.usage is not None
        (trace,) = _traces(live)
        assert trace["name"] == f"chat {MODEL}" and trace["status"] == "ok"
        assert trace["input_tokens"] == done.usage.prompt_tokens
        assert trace["output_tokens"] == done.usage.completion_tokens
        import httpx

        spans = httpx.get(f"{live.url}/api/traces/{trace['trace_id']}").json()["spans"]
        attrs = spans[0]["attributes"]
        assert attrs["gen_ai.operation.name"] == "chat"
        assert attrs["gen_ai.request.model"] == MODEL
        assert attrs["gen_ai.provider.name"] == "openai_compat"
        assert "[secret]" in attrs["gen_ai.input.messages"]
        assert done.choices[0].message.content in attrs["gen_ai.output.messages"]
    finally:
        live.stop()
    tracing.shutdown()
    raw = b"".join(p.read_bytes() for p in settings.home.glob("traces.sqlite*"))
    assert PROVIDER_KEY.encode() not in raw and b"sk-proj-A1b2" not in raw
    assert b"my key is" in raw  # the message itself was recorded


def test_a_kb_answer_is_a_tree_of_steps_and_can_be_rated(
    settings: Settings, upstream: UpstreamServer
) -> None:
    import httpx

    build_kb(settings).close()
    store = apikey_store(settings)
    admin = store.create(["admin"], name="admin")[1]
    alice = store.create(["chat", "kb:read"], name="alice")[1]
    bob = store.create(["chat", "kb:read"], name="bob")[1]
    settings.server.require_keys = True
    live = _serve(settings)
    try:
        answer = _sdk(live, alice).chat.completions.create(
            model="kb:docs", messages=[{"role": "user", "content": "Where is oolong tea grown?"}]
        )
        assert answer.choices[0].message.content
        head = {"Authorization": f"Bearer {admin}"}
        assert httpx.get(live.url + "/api/traces", headers=head).status_code == 200
        assert (
            httpx.get(
                live.url + "/api/traces", headers={"Authorization": f"Bearer {alice}"}
            ).status_code
            == 403
        )  # traces hold every caller's prompts: admin only
        assert tracing.flush(10)
        traces = httpx.get(live.url + "/api/traces", headers=head, params={"kb": "docs"}).json()
        (trace,) = [t for t in traces["traces"] if t["name"] == "answer docs"]
        spans = httpx.get(f"{live.url}/api/traces/{trace['trace_id']}", headers=head).json()
        by_name = {s["name"]: s for s in spans["spans"]}
        root = by_name["answer docs"]
        assert by_name["search docs"]["parent_id"] == root["span_id"]
        assert root["key_id"] and all(s["key_id"] == root["key_id"] for s in spans["spans"])
        assert "oolong" in root["attributes"]["hanlin.question"]
        url = f"{live.url}/api/traces/{trace['trace_id']}/rating"
        vote = {"rating": -1, "comment": "missed the province"}
        denied = httpx.post(url, json=vote, headers={"Authorization": f"Bearer {bob}"})
        assert denied.status_code == 403  # bob did not make this trace
        ok = httpx.post(url, json=vote, headers={"Authorization": f"Bearer {alice}"})
        assert ok.status_code == 200, ok.text
        rated = httpx.get(live.url + "/api/traces", headers=head, params={"rating": -1}).json()
        assert [t["comment"] for t in rated["traces"]] == ["missed the province"]
    finally:
        live.stop()


def test_content_capture_can_be_turned_off(settings: Settings, upstream: UpstreamServer) -> None:
    settings.tracing.capture_content = False
    live = _serve(settings)
    try:
        _sdk(live).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "a private question"}]
        )
        (trace,) = _traces(live)
        import httpx

        spans = httpx.get(f"{live.url}/api/traces/{trace['trace_id']}").json()["spans"]
        assert "gen_ai.input.messages" not in spans[0]["attributes"]
        assert spans[0]["input_tokens"] > 0  # counts are still kept
    finally:
        live.stop()
    tracing.shutdown()
    raw = b"".join(p.read_bytes() for p in settings.home.glob("traces.sqlite*"))
    assert b"a private question" not in raw


@pytest.mark.embedded_only  # reads or locks the trace store's SQLite file
def test_a_locked_trace_store_never_fails_or_slows_a_request(
    settings: Settings, upstream: UpstreamServer
) -> None:
    live = _serve(settings)
    try:
        client = _sdk(live)
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "a"}])
        assert tracing.flush(10)
        # another process holds the trace database's write lock
        locker = sqlite3.connect(settings.home / "traces.sqlite", timeout=0)
        locker.execute("BEGIN EXCLUSIVE")
        try:
            t0 = time.perf_counter()
            for i in range(3):
                done = client.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": f"q{i}"}]
                )
                assert done.choices[0].message.content
            elapsed = time.perf_counter() - t0
            assert tracing.flush(60)
            import httpx

            sinks = httpx.get(live.url + "/api/traces/status").json()["sinks"]
        finally:
            locker.rollback()
            locker.close()
        assert elapsed < 3.0  # three calls to a local fake: the lock is not on their path
        assert sinks["trace store"]["failed"] >= 1 and "locked" in sinks["trace store"]["error"]
    finally:
        live.stop()


def test_a_web_page_cannot_read_or_rate_traces_on_the_keyless_server(
    settings: Settings, upstream: UpstreamServer
) -> None:
    import httpx

    live = _serve(settings)
    try:
        _sdk(live).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
        (trace,) = _traces(live)
        rating = f"{live.url}/api/traces/{trace['trace_id']}/rating"
        cross_site = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
        r = httpx.post(rating, json={"rating": -1}, headers=cross_site)
        assert r.status_code == 403  # a page on another site may not write here
        rebound = httpx.get(live.url + "/api/traces", headers={"Host": "evil.example"})
        assert rebound.status_code == 421  # DNS rebinding: a foreign Host reads nothing
        assert "trace_id" not in rebound.text
        assert _traces(live)[0]["rating"] is None
        for bad in ("../../etc/passwd", "ABC", "0" * 33):
            r = httpx.get(f"{live.url}/api/traces/{bad}")
            assert r.status_code in (400, 404, 422) and "Traceback" not in r.text
        r = httpx.get(live.url + "/api/traces", params={"before": "1:zz"})
        assert r.status_code in (400, 422) and "cursor" in r.text
    finally:
        live.stop()


def test_every_chat_answer_names_its_trace_streamed_or_not(
    settings: Settings, upstream: UpstreamServer
) -> None:
    """``X-Trace-Id`` on a chat completion is the id of the trace that answer made — for a
    gateway model, a ``kb:`` answer and an ``agent:`` run, streamed and not — so a client can
    rate that answer; every call gets a trace of its own."""
    import httpx

    build_kb(settings).close()
    live = _serve(settings)
    try:
        sdk = _sdk(live)
        seen: dict[str, str] = {}
        for model in (MODEL, "kb:docs", "agent:assistant"):
            for stream in (False, True):
                ask = [{"role": "user", "content": f"Where is oolong tea grown? {stream}"}]
                raw = sdk.chat.completions.with_raw_response.create(
                    model=model, messages=ask, stream=stream
                )
                trace_id = raw.headers["x-trace-id"]
                body = raw.parse()
                if stream:
                    assert "".join(c.choices[0].delta.content or "" for c in body if c.choices)
                seen[f"{model} {stream}"] = trace_id
        assert len(set(seen.values())) == 6
        assert tracing.flush(10)
        for call, trace_id in seen.items():
            spans = httpx.get(f"{live.url}/api/traces/{trace_id}").json()["spans"]
            roots = [s["name"] for s in spans if s["parent_id"] is None]
            model = call.split()[0]
            assert len(roots) == 1, call
            if model == "kb:docs":
                assert roots == ["answer docs"]
            elif model == MODEL:
                assert roots == [f"chat {MODEL}"]
            else:
                assert roots[0].startswith("invoke_agent") and len(spans) > 1
        r = httpx.post(
            f"{live.url}/api/traces/{seen['kb:docs True']}/rating",
            json={"rating": 1, "comment": "good"},
        )
        assert r.status_code == 200
        (rated,) = _traces(live, rating=1)
        assert rated["trace_id"] == seen["kb:docs True"] and rated["name"] == "answer docs"
    finally:
        live.stop()


def test_no_trace_header_while_tracing_is_off(settings: Settings, upstream: UpstreamServer) -> None:
    settings.tracing.enabled = False
    live = _serve(settings)
    try:
        raw = _sdk(live).chat.completions.with_raw_response.create(
            model=MODEL, messages=[{"role": "user", "content": "x"}]
        )
        assert "x-trace-id" not in raw.headers
    finally:
        live.stop()
