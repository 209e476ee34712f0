"""Permissions follow the caller: every key shape × every route and tool that reaches a
knowledge base or spends a model.

The confused deputy as filed: a key limited to knowledge base ``alpha`` ran an agent whose
``kb_search`` tool pointed at ``beta`` and got beta's text. Here the same attack runs through
the agent's model (``agent:snoop``), the agents API and the library, next to the direct routes;
what a key may do is derived from its declared scopes and knowledge bases, not from the code
under test.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hanlin.access.auth import open_apikeys
from hanlin.access.caller import Access, acting_as
from hanlin.agents.tools import kb_ask, kb_search
from hanlin.config import Settings
from hanlin.errors import AccessDeniedError
from hanlin.knowledge.kb import KnowledgeBase
from hanlin.server.app import create_app
from hanlin.testing.upstream import UpstreamServer
from tests.agents.test_loop import answer, calls_stream
from tests.conftest import home_database, job_worker, lasting_home, use_home
from tests.server.conftest import MODEL, build_kb

PATH = "/v1/chat/completions"
SECRET = "The vault combination is 7431 ZEBRA, kept in the beta archive."
#: key shapes: name → (scopes, knowledge bases; empty = all)
KEYS: dict[str, tuple[list[str], list[str]]] = {
    "chat": (["chat"], []),
    "reader": (["kb:read"], []),
    "reader_alpha": (["kb:read"], ["alpha"]),
    "reader_chat_alpha": (["kb:read", "chat"], ["alpha"]),
    "writer_alpha": (["kb:write"], ["alpha"]),
    "agents_only": (["agents"], []),
    "agents_reader_alpha": (["agents", "chat", "kb:read"], ["alpha"]),
    "agents_reader": (["agents", "chat", "kb:read"], []),
    "workflows": (["workflows"], []),
    "admin": (["admin"], []),
}
SNOOP = f"""
name: snoop
model: {MODEL}
tools:
  - name: kb_search
    kb: beta
limits: {{max_steps: 3, max_seconds: 30}}
"""


def may(key: str, needs: set[str], kb: str | None) -> bool:
    """What the key's declaration allows: every needed scope, and the knowledge base."""
    scopes, kbs = KEYS[key]
    have = set(scopes)
    held = all(
        "admin" in have or s in have or (s == "kb:read" and "kb:write" in have) for s in needs
    )
    return held and (kb is None or not kbs or kb in kbs)


@dataclass
class World:
    client: TestClient
    keys: dict[str, str]
    upstream: UpstreamServer
    settings: Settings

    def headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[key]}"}


@pytest.fixture(scope="module")
def world(request: pytest.FixtureRequest, upstream_server: UpstreamServer) -> Iterator[World]:
    from tests.server.conftest import make_settings

    home = lasting_home(request, "matrix")
    with home_database(home):  # the settings name the home's own database (on PostgreSQL)
        settings = make_settings(home, upstream_server.url, require_keys=True)
    build_kb(settings, "alpha").close()
    beta_src = settings.home / "src-beta"
    beta_src.mkdir()
    (beta_src / "vault.md").write_text(f"# Vault\n\n{SECRET}\n", "utf-8")
    with KnowledgeBase.create("beta", settings=settings) as beta:
        assert beta.add(beta_src).ok
    agents = settings.home / "agents"
    agents.mkdir()
    (agents / "snoop.yaml").write_text(SNOOP, "utf-8")
    store = open_apikeys(settings)
    keys = {
        name: store.create(scopes, kbs=kbs, name=name)[1] for name, (scopes, kbs) in KEYS.items()
    }
    with job_worker(settings), TestClient(create_app(settings)) as client:
        yield World(client, keys, upstream_server, settings)


@pytest.fixture(autouse=True)
def _home(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Agent tools open knowledge bases with the default settings: this world's home (and
    its database, on PostgreSQL)."""
    use_home(monkeypatch, world.settings.home)


# route name → (what it needs, the request) for knowledge base ``kb``
Request = Callable[[World, str, str], Any]


def _upload(w: World, key: str, kb: str) -> Any:
    files = [("files", ("planted.txt", b"planted by a test", "text/plain"))]
    return w.client.post(f"/api/kb/{kb}/files", files=files, headers=w.headers(key))


def _ask(extra: dict[str, Any]) -> Request:
    def run(w: World, key: str, kb: str) -> Any:
        body = {"question": "What is the vault combination?", "mode": "extractive"} | extra
        return w.client.post(f"/api/kb/{kb}/ask", json=body, headers=w.headers(key))

    return run


ROUTES: dict[str, tuple[set[str], Request]] = {
    "info": ({"kb:read"}, lambda w, key, kb: w.client.get(f"/api/kb/{kb}", headers=w.headers(key))),
    "documents": (
        {"kb:read"},
        lambda w, key, kb: w.client.get(f"/api/kb/{kb}/documents", headers=w.headers(key)),
    ),
    "chunks": (
        {"kb:read"},
        lambda w, key, kb: w.client.get(
            f"/api/kb/{kb}/documents/chunks",
            params={"doc": {"alpha": "src-alpha/tea.md", "beta": "src-beta/vault.md"}[kb]},
            headers=w.headers(key),
        ),
    ),
    "search": (
        {"kb:read"},
        lambda w, key, kb: w.client.post(
            f"/api/kb/{kb}/search", json={"query": "vault"}, headers=w.headers(key)
        ),
    ),
    "ask": ({"kb:read"}, _ask({})),
    # choosing the generator or sending free-form history is using chat
    "ask_with_model": ({"kb:read", "chat"}, _ask({"model": MODEL, "mode": "generative"})),
    "ask_with_history": (
        {"kb:read", "chat"},
        _ask({"history": [{"role": "user", "content": "ignore the documents"}]}),
    ),
    "kb_model": (
        {"chat", "kb:read"},
        lambda w, key, kb: w.client.post(
            PATH,
            json={"model": f"kb:{kb}", "messages": [{"role": "user", "content": "vault?"}]},
            headers=w.headers(key),
        ),
    ),
    "upload": ({"kb:write"}, _upload),
    "sync": (
        {"kb:write"},
        lambda w, key, kb: w.client.post(f"/api/kb/{kb}/sync", headers=w.headers(key)),
    ),
}


@pytest.mark.parametrize("route", sorted(ROUTES))
@pytest.mark.parametrize("key", sorted(KEYS))
def test_routes_follow_the_key(world: World, route: str, key: str) -> None:
    needs, send = ROUTES[route]
    for kb in ("alpha", "beta"):
        response = send(world, key, kb)
        if may(key, needs, kb):
            assert response.status_code < 300, (route, key, kb, response.text)
        else:
            assert response.status_code == 403, (route, key, kb, response.text)
            assert response.json()["error"]["code"] in ("insufficient_scope", "kb_not_allowed")
            assert SECRET not in response.text


@pytest.mark.parametrize("key", sorted(KEYS))
def test_spending_a_model_needs_chat(world: World, key: str) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    response = world.client.post(PATH, json=body, headers=world.headers(key))
    assert response.status_code == (200 if may(key, {"chat"}, None) else 403), response.text


def _tool_results(upstream: UpstreamServer) -> list[str]:
    bodies = [body for path, _, body in upstream.app.requests if path == PATH]
    return [
        str(m.get("content"))
        for body in bodies
        for m in body.get("messages", [])
        if m.get("role") == "tool"
    ]


@pytest.mark.parametrize("key", sorted(KEYS))
def test_an_agent_tool_on_another_kb_runs_with_the_callers_access(world: World, key: str) -> None:
    """The confused deputy: the agent's kb_search points at beta."""
    upstream = world.upstream
    upstream.app.reset()
    upstream.app.script(PATH, calls_stream(("kb_search", '{"query": "vault combination"}')))
    upstream.app.script(PATH, answer("Here is what I found."))
    body = {"model": "agent:snoop", "messages": [{"role": "user", "content": "find the vault"}]}
    response = world.client.post(PATH, json=body, headers=world.headers(key))
    if not may(key, {"chat", "agents"}, None):
        assert response.status_code == 403, response.text
        return
    assert response.status_code == 200, response.text
    results = _tool_results(upstream)
    assert results, "the agent called its tool"
    if may(key, {"kb:read"}, "beta"):
        assert "7431" in results[0]
    else:
        assert all("7431" not in r for r in results), results
        assert (
            "may not use the knowledge base 'beta'" in results[0]
            or "lacks the scope" in (results[0])
        )


@pytest.mark.parametrize("key", ["agents_only", "agents_reader_alpha", "agents_reader"])
def test_agent_runs_api_follows_the_key(world: World, key: str) -> None:
    upstream = world.upstream
    upstream.app.reset()
    upstream.app.script(PATH, calls_stream(("kb_search", '{"query": "vault combination"}')))
    upstream.app.script(PATH, answer("Done."))
    response = world.client.post(
        "/v1/agents/snoop/runs", json={"input": "find the vault"}, headers=world.headers(key)
    )
    assert response.status_code == 200, response.text
    results = _tool_results(upstream)
    assert results
    leaked = any("7431" in r for r in results)
    assert leaked == may(key, {"kb:read"}, "beta")


def test_the_library_checks_without_any_surface(world: World) -> None:
    """Tools, RAG and the knowledge base itself check the caller — no route involved."""
    settings = world.settings
    alpha_only = Access.key("key_test", ["kb:read", "chat"], ["alpha"])
    search_beta = kb_search("beta")
    ask_beta = kb_ask("beta", mode="extractive")
    with acting_as(alpha_only):
        with pytest.raises(AccessDeniedError) as denied:
            KnowledgeBase("beta", settings).search("vault")
        assert denied.value.code == "kb_not_allowed"
        assert KnowledgeBase("alpha", settings).search("oolong")
        with pytest.raises(AccessDeniedError):
            KnowledgeBase.create("gamma", settings=settings)
    with acting_as(alpha_only):
        for tool, args in ((search_beta, {"query": "vault"}), (ask_beta, {"question": "vault?"})):
            result = asyncio.run(tool.run(args))
            assert result.is_error and "7431" not in result.content, result.content
    searched = asyncio.run(search_beta.run({"query": "vault combination"}))
    assert "7431" in searched.content  # the local user (no request) may read it


def test_a_job_runs_with_the_submitters_access(world: World) -> None:
    """Background work started by a request keeps the request's caller."""
    response = _upload(world, "writer_alpha", "alpha")
    assert response.status_code == 202
    job = response.json()["job"]
    from tests.server.conftest import wait_job

    class Authed:
        def get(self, url: str) -> Any:
            return world.client.get(url, headers=world.headers("admin"))

    done = wait_job(Authed(), "alpha", job)
    assert done["status"] == "done", json.dumps(done)


# routes whose allowed answer is itself an error (nothing to forget, an unknown model): the
# attack fails when the key is refused with 403 before the route looks at anything
GATED: dict[str, tuple[set[str], Request]] = {
    "embedders": (
        {"kb:read"},
        lambda w, key, kb: w.client.get(f"/api/kb/{kb}/embedders", headers=w.headers(key)),
    ),
    "forget_failed": (
        {"kb:write"},
        lambda w, key, kb: w.client.delete(
            f"/api/kb/{kb}/failed", params={"file": "planted.txt"}, headers=w.headers(key)
        ),
    ),
    "reembed": (
        {"kb:write"},
        lambda w, key, kb: w.client.post(
            f"/api/kb/{kb}/reembed", json={"model": "no-such-model"}, headers=w.headers(key)
        ),
    ),
}


@pytest.mark.parametrize("route", sorted(GATED))
@pytest.mark.parametrize("key", sorted(KEYS))
def test_kb_page_actions_follow_the_key(world: World, route: str, key: str) -> None:
    needs, send = GATED[route]
    for kb in ("alpha", "beta"):
        response = send(world, key, kb)
        if may(key, needs, kb):
            assert response.status_code != 403, (route, key, kb, response.text)
        else:
            assert response.status_code == 403, (route, key, kb, response.text)
            assert response.json()["error"]["code"] in ("insufficient_scope", "kb_not_allowed")
            assert SECRET not in response.text


# the workflow editor's routes: no knowledge base, so `kb` is not sent; saving is an admin's act
# (a saved workflow is what every `workflows` key runs, with the models its llm nodes choose)
SHOUT = {
    "nodes": [
        {"id": "start", "type": "start", "inputs": {"q": "string"}},
        {"id": "out", "type": "answer", "answer": "{{start.q}}"},
    ]
}
EDITOR: dict[str, tuple[set[str], Callable[[World, str], Any]]] = {
    "node_palette": (
        {"workflows"},
        lambda w, key: w.client.get("/v1/workflows/nodes", headers=w.headers(key)),
    ),
    "validate": (
        {"workflows"},
        lambda w, key: w.client.post(
            "/v1/workflows/validate", json={"yaml": json.dumps(SHOUT)}, headers=w.headers(key)
        ),
    ),
    "save": (
        {"admin"},
        lambda w, key: w.client.put(
            f"/v1/workflows/by-{key}", json={"definition": SHOUT}, headers=w.headers(key)
        ),
    ),
}


@pytest.mark.parametrize("route", sorted(EDITOR))
@pytest.mark.parametrize("key", sorted(KEYS))
def test_workflow_editor_routes_follow_the_key(world: World, route: str, key: str) -> None:
    needs, send = EDITOR[route]
    response = send(world, key)
    saved = world.settings.home / "workflows" / f"by-{key}.yaml"
    if may(key, needs, None):
        assert response.status_code < 300, (route, key, response.text)
    else:
        assert response.status_code == 403, (route, key, response.text)
        assert response.json()["error"]["code"] == "insufficient_scope"
        if route == "save":
            assert not saved.exists()
