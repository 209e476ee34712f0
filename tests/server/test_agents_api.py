"""Agents over HTTP: list, run with SSE events, approvals answered by a second request, the
``agent:<name>`` model through the official OpenAI SDK, and the errors a client sees."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from hanlin.access.auth import open_apikeys
from hanlin.config import Settings
from hanlin.server.app import create_app
from hanlin.testing.upstream import UpstreamServer
from tests.agents.test_loop import answer, calls_stream
from tests.server.conftest import MODEL, LiveServer

PATH = "/v1/chat/completions"

CALC = f"""
name: calc
description: adds numbers
model: {MODEL}
system: Use the calculator.
tools: [calculator]
limits: {{max_steps: 4, max_seconds: 30}}
"""

WRITER = f"""
name: writer
model: {MODEL}
tools:
  - name: files
    workspace: {{workspace}}
limits: {{max_steps: 4, max_seconds: 30}}
"""


def sse_events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        if line.startswith("data: ") and line != "data: [DONE]":
            yield json.loads(line[6:])


@pytest.fixture()
def settings(fresh_settings: Callable[..., Settings]) -> Settings:
    s = fresh_settings()
    agents = s.home / "agents"
    agents.mkdir(parents=True, exist_ok=True)
    (agents / "calc.yaml").write_text(CALC, "utf-8")
    workspace = s.home / "ws"
    workspace.mkdir()
    (agents / "writer.yaml").write_text(WRITER.replace("{workspace}", str(workspace)), "utf-8")
    return s


@pytest.fixture()
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def test_list_and_show_agents(client: TestClient) -> None:
    names = {a["name"]: a for a in client.get("/v1/agents").json()["data"]}
    assert {"calc", "writer", "assistant"} <= set(names)
    assert names["calc"]["tools"] == ["calculator"]
    shown = client.get("/v1/agents/calc").json()
    assert shown["model"] == MODEL and shown["system"] == "Use the calculator."


def test_a_run_streams_every_step_and_the_answer(
    client: TestClient, upstream: UpstreamServer
) -> None:
    upstream.app.script(PATH, calls_stream(("calculator", '{"expression": "17*3"}')), answer("51"))
    with client.stream("POST", "/v1/agents/calc/runs", json={"input": "17 times 3?"}) as r:
        assert r.status_code == 200
        events = list(sse_events(r.iter_lines()))
    kinds = [e["type"] for e in events]
    assert kinds[0] == "run" and kinds[-1] == "final"
    assert kinds.index("tool_call") < kinds.index("tool_result") < kinds.index("final")
    result = next(e for e in events if e["type"] == "tool_result")
    assert result["name"] == "calculator" and result["content"] == "51"
    final = events[-1]
    assert final["text"] == "51" and final["stop_reason"] == "answer"
    assert final["usage"]["total_tokens"] > 0
    status = client.get(f"/v1/agents/runs/{events[0]['run_id']}").json()
    assert status["status"] == "done" and status["stop_reason"] == "answer"


def test_a_run_without_stream_returns_the_result(
    client: TestClient, upstream: UpstreamServer
) -> None:
    upstream.app.script(PATH, calls_stream(("calculator", '{"expression": "2+2"}')), answer("4"))
    body = client.post("/v1/agents/calc/runs", json={"input": "2+2", "stream": False}).json()
    assert body["text"] == "4" and body["stop_reason"] == "answer"
    assert [e["type"] for e in body["events"]].count("tool_result") == 1


def _run_with_approval(
    live: LiveServer, upstream: UpstreamServer, approved: bool
) -> list[dict[str, Any]]:
    args = json.dumps({"path": "note.txt", "content": "hello"})
    upstream.app.script(PATH, calls_stream(("write_file", args)), answer("Saved."))
    events: list[dict[str, Any]] = []
    answers: list[int] = []
    with (
        httpx.Client(base_url=live.url, timeout=30) as http,
        http.stream("POST", "/v1/agents/writer/runs", json={"input": "save hello"}) as r,
    ):
        for event in sse_events(r.iter_lines()):
            events.append(event)
            if event["type"] == "approval_request":
                assert event["tool"] == "write_file" and event["side_effects"] == ["writes"]
                url = f"/v1/agents/runs/{event['run_id']}/approvals/{event['id']}"

                def decide(u: str = url) -> None:  # answered from another connection
                    with httpx.Client(base_url=live.url, timeout=10) as other:
                        answers.append(other.post(u, json={"approved": approved}).status_code)

                t = threading.Thread(target=decide)
                t.start()
                t.join()
    assert answers == [200]
    return events


def test_an_approved_write_happens(settings: Settings, upstream: UpstreamServer) -> None:
    live = LiveServer(create_app(settings))
    try:
        events = _run_with_approval(live, upstream, approved=True)
    finally:
        live.stop()
    result = next(e for e in events if e["type"] == "tool_result")
    assert not result["is_error"]
    assert (settings.home / "ws" / "note.txt").read_text("utf-8") == "hello"
    assert events[-1]["text"] == "Saved."


def test_a_denied_write_does_not_happen(settings: Settings, upstream: UpstreamServer) -> None:
    live = LiveServer(create_app(settings))
    try:
        events = _run_with_approval(live, upstream, approved=False)
    finally:
        live.stop()
    result = next(e for e in events if e["type"] == "tool_result")
    assert result["is_error"] and "not approved" in result["content"]
    assert not (settings.home / "ws" / "note.txt").exists()


def test_answering_an_approval_nobody_waits_for_is_a_clear_error(client: TestClient) -> None:
    r = client.post("/v1/agents/runs/run_nope/approvals/call_1", json={"approved": True})
    assert r.status_code == 404 and "no agent run" in r.json()["error"]["message"]


def test_unknown_agents_and_file_paths_are_not_found(client: TestClient) -> None:
    r = client.post("/v1/agents/nobody/runs", json={"input": "hi"})
    assert r.status_code == 404
    assert "calc" in r.json()["error"]["hint"]  # says which agents exist
    # a client cannot make the server read a file it names
    assert client.get("/v1/agents/..%2F..%2Fetc%2Fpasswd").status_code == 404
    assert client.get("/v1/agents/calc.yaml").status_code == 404


def test_agent_model_through_the_openai_sdk(settings: Settings, upstream: UpstreamServer) -> None:
    from openai import OpenAI

    upstream.app.script(PATH, calls_stream(("calculator", '{"expression": "6*7"}')), answer("42"))
    upstream.app.script(PATH, calls_stream(("calculator", '{"expression": "6*7"}')), answer("42"))
    live = LiveServer(create_app(settings))
    try:
        sdk = OpenAI(base_url=f"{live.url}/v1", api_key="unused", max_retries=0)
        resp = sdk.chat.completions.create(
            model="agent:calc", messages=[{"role": "user", "content": "6*7?"}]
        )
        assert resp.choices[0].message.content == "42"
        stream = sdk.chat.completions.create(
            model="agent:calc", messages=[{"role": "user", "content": "6*7?"}], stream=True
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text == "42"
    finally:
        live.stop()


def test_agents_need_the_agents_scope(fresh_settings: Callable[..., Settings]) -> None:
    settings = fresh_settings(require_keys=True)
    store = open_apikeys(settings)
    _, chat_only = store.create(["chat"])
    _, runner = store.create(["agents"])
    with TestClient(create_app(settings)) as c:
        denied = c.get("/v1/agents", headers={"Authorization": f"Bearer {chat_only}"})
        assert denied.status_code == 403 and "agents" in denied.json()["error"]["message"]
        ok = c.get("/v1/agents", headers={"Authorization": f"Bearer {runner}"})
        assert ok.status_code == 200
