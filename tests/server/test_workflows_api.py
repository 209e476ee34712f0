"""Workflows over HTTP: list, show, validate, run (JSON and SSE), the human-input round trip,
rerun and cancel, webhooks behind API keys and the browser guard, runs owned by their key, the
``workflow:<name>`` model through the official OpenAI SDK, and runs a killed process left
running resumed when the server starts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest
from fastapi.testclient import TestClient

from hanlin.access.auth import open_apikeys
from hanlin.config import Settings
from hanlin.flows import FlowEngine
from hanlin.server.app import create_app
from hanlin.testing.upstream import UpstreamServer
from tests.agents.test_loop import answer
from tests.flows.conftest import CountingServer
from tests.server.conftest import MODEL, LiveServer

ECHO = """
name: echo
description: says it back
nodes:
  - id: start
    type: start
    inputs:
      q: {type: string, description: what to say}
      times: {type: integer, required: false, default: 1}
  - {id: out, type: answer, answer: "{{start.q * start.times}}"}
"""
REVIEW = """
name: review
nodes:
  - {id: start, type: start, inputs: {draft: string}}
  - id: ask
    type: human_input
    kind: form
    prompt: "Publish {{start.draft}}?"
    form_schema:
      type: object
      properties: {approved: {type: boolean}, title: {type: string, minLength: 3}}
      required: [approved, title]
      additionalProperties: false
  - {id: out, type: answer, answer: "{{ask.title}}: {{start.draft}} ({{ask.approved}})"}
"""
CHAT = f"""
name: chat
nodes:
  - {{id: start, type: start, inputs: {{question: string}}}}
  - {{id: ask, type: llm, model: {MODEL}, prompt: "Answer briefly: {{{{start.question}}}}"}}
  - {{id: out, type: answer, answer: "{{{{ask.text}}}}"}}
"""
BROKEN = """
name: broken
nodes:
  - {id: start, type: strt}
"""
FAILING = """
name: failing
nodes:
  - {id: start, type: start, inputs: {q: string}}
  - id: boom
    type: code
    code: |
      def main():
          raise ValueError("no luck")
    outputs: {x: string}
  - {id: out, type: answer, answer: "{{boom.x}}"}
"""


def sse_events(text: str) -> list[dict[str, Any]]:
    return [
        json.loads(line[6:])
        for line in text.splitlines()
        if line.startswith("data: ") and line != "data: [DONE]"
    ]


def write_workflows(settings: Settings, **files: str) -> None:
    folder = settings.home / "workflows"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.yaml").write_text(text, "utf-8")


@pytest.fixture()
def settings(fresh_settings: Callable[..., Settings]) -> Settings:
    s = fresh_settings()
    write_workflows(s, echo=ECHO, review=REVIEW, chat=CHAT, broken=BROKEN, failing=FAILING)
    return s


@pytest.fixture()
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def test_list_show_and_validate(client: TestClient) -> None:
    listed = {w["name"]: w for w in client.get("/v1/workflows").json()["data"]}
    assert listed["echo"]["valid"] and listed["echo"]["description"] == "says it back"
    assert listed["echo"]["inputs"]["required"] == ["q"]
    assert not listed["broken"]["valid"] and listed["broken"]["inputs"] is None
    assert any("strt" in p["message"] for p in listed["broken"]["problems"])

    shown = client.get("/v1/workflows/echo").json()
    assert [n["id"] for n in shown["nodes"]] == ["start", "out"]
    assert shown["inputs"]["properties"]["q"] == {"type": "string", "description": "what to say"}
    assert shown["inputs"]["properties"]["times"]["default"] == 1
    assert "name: echo" in shown["yaml"]
    missing = client.get("/v1/workflows/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "workflow_not_found"
    # a client names workflows, never files
    assert client.get("/v1/workflows/echo.yaml").status_code == 404

    ok = client.post("/v1/workflows/validate", json={"yaml": ECHO}).json()
    assert ok["valid"] and ok["nodes"] == 2
    bad = client.post("/v1/workflows/validate", json={"yaml": BROKEN}).json()
    assert not bad["valid"] and bad["problems"][0]["node"] == "start"
    assert "did you mean 'start'" in bad["problems"][0]["fix"]
    syntax = client.post("/v1/workflows/validate", json={"yaml": "nodes: [unclosed"}).json()
    assert not syntax["valid"] and "YAML" in syntax["error"]
    laughs = "a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\nname: lol\nnodes: []\n"
    refused = client.post("/v1/workflows/validate", json={"yaml": laughs}).json()
    assert not refused["valid"] and "aliases" in refused["error"]


def test_a_run_answers_as_json_and_streams_its_events_in_order(client: TestClient) -> None:
    done = client.post("/v1/workflows/echo/runs", json={"inputs": {"q": "ab", "times": 2}})
    assert done.status_code == 200
    run = done.json()
    assert run["status"] == "done" and run["outputs"] == {"answer": "abab"} and run["form"] is None

    streamed = client.post("/v1/workflows/echo/runs", json={"inputs": {"q": "x"}, "stream": True})
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert streamed.text.rstrip().endswith("data: [DONE]")
    events = sse_events(streamed.text)
    assert [(e["type"], e.get("node")) for e in events] == [
        ("run_started", None),
        ("node_started", "start"),
        ("node_finished", "start"),
        ("node_started", "out"),
        ("node_finished", "out"),
        ("run_finished", None),
    ]
    assert events[-1]["outputs"] == {"answer": "x"} and events[-1]["status"] == "done"

    detail = client.get(f"/v1/workflows/runs/{events[0]['run_id']}").json()
    assert [s["node"] for s in detail["history"]] == ["start", "out"]
    assert detail["state"]["out"]["outputs"] == {"answer": "x"}
    listed = client.get("/v1/workflows/runs", params={"workflow": "echo", "limit": 1}).json()
    assert len(listed["data"]) == 1 and listed["has_more"]
    assert listed["data"][0]["id"] == events[0]["run_id"]  # newest first

    bad_input = client.post("/v1/workflows/echo/runs", json={"inputs": {"qq": "x"}})
    assert bad_input.status_code == 400 and "unknown workflow input 'qq'" in bad_input.text
    assert client.get("/v1/workflows/runs/run_nope").status_code == 404


def test_human_input_round_trip_over_http(client: TestClient) -> None:
    run = client.post("/v1/workflows/review/runs", json={"inputs": {"draft": "v1"}}).json()
    assert run["status"] == "paused"
    url = run["form"]["url"]
    form = client.get(url).json()
    assert form["node"] == "ask" and form["prompt"] == "Publish v1?"
    assert form["schema"]["required"] == ["approved", "title"]

    for answer_, field in (
        ({"approved": True}, "title"),
        ({"approved": "yes", "title": "Big news"}, "approved"),
        ({"approved": True, "title": "ab"}, "title"),
        ({"approved": True, "title": "Big news", "extra": 1}, "extra"),
    ):
        bad = client.post(url, json={"answer": answer_})
        assert bad.status_code == 422, bad.text
        error = bad.json()["error"]
        assert error["code"] == "workflow_bad_answer" and error["param"] == field, error
        # the run is untouched: still paused on the same form
        assert client.get(url).json()["node"] == "ask"
        assert client.get(f"/v1/workflows/runs/{run['id']}").json()["status"] == "paused"

    good = client.post(url, json={"answer": {"approved": True, "title": "Big news"}})
    assert good.status_code == 200
    assert good.json()["outputs"] == {"answer": "Big news: v1 (True)"}
    gone = client.get(url)
    assert gone.status_code == 409 and gone.json()["error"]["code"] == "workflow_not_paused"


def test_rerun_from_a_node_resume_and_cancel(client: TestClient) -> None:
    first = client.post("/v1/workflows/echo/runs", json={"inputs": {"q": "a"}}).json()
    again = client.post(
        f"/v1/workflows/runs/{first['id']}/rerun", json={"node": "out", "inputs": {"q": "b"}}
    ).json()
    assert again["parent"] == first["id"] and again["outputs"] == {"answer": "b"}
    unknown = client.post(f"/v1/workflows/runs/{first['id']}/rerun", json={"node": "nope"})
    assert unknown.status_code == 400 and "no node 'nope'" in unknown.text

    finished = client.post(f"/v1/workflows/runs/{first['id']}/resume", json={})
    assert finished.status_code == 409
    assert finished.json()["error"]["code"] == "workflow_run_finished"

    paused = client.post("/v1/workflows/review/runs", json={"inputs": {"draft": "v"}}).json()
    cancelled = client.post(f"/v1/workflows/runs/{paused['id']}/cancel")
    assert cancelled.json()["status"] == "cancelled"
    answered = client.post(
        f"/v1/workflows/runs/{paused['id']}/form",
        json={"answer": {"approved": True, "title": "late"}},
    )
    assert answered.status_code == 409

    failed = client.post("/v1/workflows/failing/runs", json={"inputs": {"q": "x"}}).json()
    assert failed["status"] == "failed" and "no luck" in failed["error"]


def _keys(settings: Settings, **scopes: list[str]) -> dict[str, str]:
    store = open_apikeys(settings)
    return {name: store.create(s, name=name)[1] for name, s in scopes.items()}


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _wait_done(client: TestClient, run_id: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        run: dict[str, Any] = client.get(f"/v1/workflows/runs/{run_id}", headers=headers).json()
        if run["status"] not in ("pending", "running") or time.monotonic() > deadline:
            return run
        time.sleep(0.05)


def test_webhook_needs_a_key_with_the_workflows_scope(
    fresh_settings: Callable[..., Settings],
) -> None:
    s = fresh_settings(require_keys=True)
    write_workflows(s, echo=ECHO)
    keys = _keys(s, hook=["workflows"], chatty=["chat"], boss=["admin"])
    with TestClient(create_app(s)) as c:
        hook = "/v1/workflows/echo/webhook"
        missing = c.post(hook, json={"q": "x"})
        assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_api_key"
        wrong = c.post(hook, json={"q": "x"}, headers=_auth("hk-" + "x" * 32))
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
        scoped = c.post(hook, json={"q": "x"}, headers=_auth(keys["chatty"]))
        assert scoped.status_code == 403
        assert scoped.json()["error"]["code"] == "insufficient_scope"
        assert c.get("/v1/workflows/runs", headers=_auth(keys["boss"])).json()["data"] == []

        accepted = c.post(hook, json={"q": "hooked"}, headers=_auth(keys["hook"]))
        assert accepted.status_code == 202, accepted.text
        run = _wait_done(c, accepted.json()["id"], _auth(keys["hook"]))
        assert run["status"] == "done" and run["outputs"] == {"answer": "hooked"}
        assert run["started_by"] and run["started_by"].startswith("key_")
        everything = c.get("/v1/workflows/runs", headers=_auth(keys["boss"])).json()["data"]
        assert [r["id"] for r in everything] == [run["id"]]  # only the good key's run exists


def test_a_cross_site_page_cannot_trigger_the_keyless_webhook(client: TestClient) -> None:
    hook = "/v1/workflows/echo/webhook"
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
    ):
        refused = client.post(hook, json={"q": "planted"}, headers=headers)
        assert refused.status_code == 403, headers
        assert refused.json()["error"]["code"] == "cross_site_request"
    simple = client.post(hook, content=b'{"q": "planted"}', headers={"Content-Type": "text/plain"})
    assert simple.status_code == 415
    assert client.get("/v1/workflows/runs").json()["data"] == []  # nothing was started

    ok = client.post(hook, json={"q": "mine"})  # curl-like: no Origin
    assert ok.status_code == 202
    assert _wait_done(client, ok.json()["id"], {})["outputs"] == {"answer": "mine"}


def test_a_key_sees_only_its_own_runs(fresh_settings: Callable[..., Settings]) -> None:
    s = fresh_settings(require_keys=True)
    write_workflows(s, echo=ECHO, review=REVIEW)
    keys = _keys(s, alice=["workflows"], bob=["workflows"], boss=["admin"])
    alice, bob, boss = (_auth(keys[k]) for k in ("alice", "bob", "boss"))
    with TestClient(create_app(s)) as c:
        paused = c.post(
            "/v1/workflows/review/runs", json={"inputs": {"draft": "secret"}}, headers=alice
        ).json()
        run_id = paused["id"]
        for method, path, body in (
            ("GET", f"/v1/workflows/runs/{run_id}", None),
            ("GET", f"/v1/workflows/runs/{run_id}/form", None),
            ("POST", f"/v1/workflows/runs/{run_id}/form", {"answer": {"approved": True}}),
            ("POST", f"/v1/workflows/runs/{run_id}/resume", {}),
            ("POST", f"/v1/workflows/runs/{run_id}/cancel", None),
            ("POST", f"/v1/workflows/runs/{run_id}/rerun", {"node": "out"}),
        ):
            seen = c.request(method, path, json=body, headers=bob)
            assert seen.status_code == 404, (path, seen.text)
            assert "secret" not in seen.text
        assert c.get("/v1/workflows/runs", headers=bob).json()["data"] == []
        assert [r["id"] for r in c.get("/v1/workflows/runs", headers=alice).json()["data"]] == [
            run_id
        ]
        assert c.get(f"/v1/workflows/runs/{run_id}", headers=boss).json()["status"] == "paused"
        assert c.get(f"/v1/workflows/runs/{run_id}/form", headers=alice).status_code == 200


def test_a_workflow_key_spends_the_workflows_model_but_not_its_own_choice(
    fresh_settings: Callable[..., Settings], upstream: UpstreamServer
) -> None:
    s = fresh_settings(require_keys=True)
    write_workflows(s, chat=CHAT)
    keys = _keys(s, runner=["workflows"])
    with TestClient(create_app(s)) as c:
        upstream.app.script("/v1/chat/completions", answer("From the workflow's model."))
        run = c.post(
            "/v1/workflows/chat/runs",
            json={"inputs": {"question": "q"}},
            headers=_auth(keys["runner"]),
        ).json()
        assert run["status"] == "done", run
        assert run["outputs"] == {"answer": "From the workflow's model."}
        # choosing a model is chat: a workflows-only key may not call one itself
        direct = c.post(
            "/v1/chat/completions",
            json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
            headers=_auth(keys["runner"]),
        )
        assert direct.status_code == 403


@pytest.mark.slow
def test_workflow_models_through_the_openai_sdk(
    settings: Settings, upstream: UpstreamServer
) -> None:
    server = LiveServer(create_app(settings))
    try:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
        models = {m.id for m in client.models.list()}
        assert {"workflow:echo", "workflow:chat", "workflow:review"} <= models
        assert "workflow:broken" not in models

        upstream.app.script("/v1/chat/completions", answer("Oolong, at 90 degrees."))
        reply = client.chat.completions.create(
            model="workflow:chat", messages=[{"role": "user", "content": "Which tea?"}]
        )
        assert reply.choices[0].message.content == "Oolong, at 90 degrees."
        sent = [b for p, _, b in upstream.app.requests if p == "/v1/chat/completions"][-1]
        assert sent["messages"][-1]["content"] == "Answer briefly: Which tea?"
        assert reply.usage is not None and reply.usage.total_tokens > 0
        assert reply.model_extra is not None and reply.model_extra["hanlin"]["status"] == "done"

        upstream.app.script("/v1/chat/completions", answer("Streamed answer."))
        stream = client.chat.completions.create(
            model="workflow:chat",
            messages=[{"role": "user", "content": "again"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == "Streamed answer."
        assert chunks[-1].usage is not None

        # a JSON object message fills several inputs
        several = client.chat.completions.create(
            model="workflow:echo",
            messages=[{"role": "user", "content": json.dumps({"q": "hi ", "times": 3})}],
        )
        assert several.choices[0].message.content == "hi hi hi "

        paused = client.chat.completions.create(
            model="workflow:review", messages=[{"role": "user", "content": "draft 2"}]
        )
        info = (paused.model_extra or {})["hanlin"]
        assert info["status"] == "paused" and info["form_url"].endswith("/form")
        content = paused.choices[0].message.content or ""
        assert info["run_id"] in content and info["form_url"] in content
        assert "Publish draft 2?" in content
        form = httpx.get(server.url + info["form_url"]).json()
        assert form["node"] == "ask"

        with pytest.raises(openai.UnprocessableEntityError) as failed:
            client.chat.completions.create(
                model="workflow:failing", messages=[{"role": "user", "content": "x"}]
            )
        assert "no luck" in str(failed.value)
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(
                model="workflow:nope", messages=[{"role": "user", "content": "x"}]
            )
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(
                model="workflow:echo",
                messages=[{"role": "user", "content": "x"}],
                temperature=0.2,
            )
        assert "temperature" in str(refused.value)
    finally:
        server.stop()


SLOW = """
name: slow
nodes:
  - {id: start, type: start, inputs: {tag: string}}
  - {id: send, type: http_request, method: POST, url: "URL/send", body: {tag: "{{start.tag}}"}}
  - {id: out, type: answer, answer: "sent {{send.json.echo}}"}
"""


@pytest.mark.slow
def test_a_run_whose_process_was_killed_is_resumed_when_the_server_starts(
    fresh_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    with CountingServer(delay=60.0) as target:
        host = target.url.removeprefix("http://")
        monkeypatch.setenv("HANLIN_WORKFLOWS__ALLOWED_HOSTS", json.dumps([host]))
        s = fresh_settings()
        write_workflows(s, slow=SLOW.replace("URL", target.url))
        proc = subprocess.Popen(
            [sys.executable, "-m", "hanlin", "workflow", "run", "slow", "-i", "tag=t", "--json"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=dict(os.environ),
        )
        engine = FlowEngine(s)
        try:
            deadline = time.monotonic() + 90
            while target.total < 1:  # the http node's request is in flight
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "the run never reached its http node"
                time.sleep(0.05)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            (left,) = engine.store.list_runs("slow")
            assert left.status == "running" and left.owner is not None

            target.delay = 0.0
            with TestClient(create_app(s)) as c:
                run = _wait_done(c, left.id, {})
            assert run["status"] == "done", run
            assert run["outputs"] == {"answer": 'sent {"tag": "t"}'}
            # the request in flight at the kill was made once more, with the same key
            assert dict(target.keys) == {f"{left.id}:send": 2}
        finally:
            if proc.poll() is None:
                proc.kill()
            engine.close()
