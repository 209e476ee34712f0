"""Workflows as MCP tools, through the official MCP client in memory: one ``workflow_<name>``
tool per valid workflow with its start node's inputs as the schema, a call that answers, one
that pauses for a person, one that fails; over HTTP, a call runs as its key and a key without
the ``workflows`` scope neither sees nor runs them."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client

from hanlin.access.auth import open_apikeys
from hanlin.config import load_settings
from hanlin.flows import FlowEngine
from hanlin.mcpserver.server import build_server
from tests.mcpserver.test_server import _http_client_call
from tests.server.test_workflows_api import BROKEN, ECHO, FAILING, REVIEW


def text(result: Any) -> str:
    return "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")


@pytest.fixture()
def home(hanlin_home: Path) -> Path:
    folder = hanlin_home / "workflows"
    folder.mkdir()
    files = {"echo": ECHO, "re.view": REVIEW, "broken": BROKEN, "failing": FAILING}
    for name, body in files.items():
        (folder / f"{name}.yaml").write_text(body.replace("name: review", "name: re.view"), "utf-8")
    return hanlin_home


def test_each_valid_workflow_is_a_tool(home: Path) -> None:
    settings = load_settings(home=home)
    server = build_server(settings, tools=[])

    async def go() -> None:
        async with Client(server.server) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert {"workflow_echo", "workflow_re_view", "workflow_failing"} <= set(tools)
            assert "workflow_broken" not in tools
            echo = tools["workflow_echo"]
            assert echo.description and echo.description.startswith("says it back")
            assert echo.input_schema["required"] == ["q"]
            assert echo.input_schema["properties"]["times"] == {"type": "integer", "default": 1}
            assert echo.annotations is not None and echo.annotations.read_only_hint is False

            done = await client.call_tool("workflow_echo", {"q": "ab", "times": 2})
            assert not done.is_error and text(done) == "abab"

            bad = await client.call_tool("workflow_echo", {"question": "x"})
            assert bad.is_error and "question" in text(bad)

            paused = await client.call_tool("workflow_re_view", {"draft": "v1"})
            assert not paused.is_error
            form = json.loads(text(paused))
            assert form["status"] == "paused" and form["prompt"] == "Publish v1?"
            assert form["form_schema"]["required"] == ["approved", "title"]

            failed = await client.call_tool("workflow_failing", {"q": "x"})
            assert failed.is_error and "no luck" in text(failed)
        await server.workflows.aclose()

    asyncio.run(go())
    engine = FlowEngine(settings)
    try:
        run = engine.store.get_run(form_run(engine))
        assert run.status == "paused" and run.started_by is None  # stdio: the local user
    finally:
        engine.close()


def form_run(engine: FlowEngine) -> str:
    (run,) = engine.store.list_runs("re.view")
    return run.id


@pytest.mark.slow
def test_over_http_a_call_runs_as_its_key(keyed_http_server: tuple[str, Path]) -> None:
    url, home = keyed_http_server
    (home / "workflows").mkdir(exist_ok=True)
    (home / "workflows" / "echo.yaml").write_text(ECHO, "utf-8")  # listed without a restart
    store = open_apikeys(load_settings(home=home))
    runner, key = store.create(["workflows"], name="runner")
    _, chat_only = store.create(["chat"], name="chatty")
    deadline = time.monotonic() + 10  # keys reach a server on PostgreSQL within a second
    while time.monotonic() < deadline:
        auth = {"Authorization": f"Bearer {chat_only}", "Accept": "application/json"}
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
        if httpx.post(url, json=init, headers=auth).status_code != 401:
            break
        time.sleep(0.1)

    names, refused = asyncio.run(_http_client_call(url, chat_only, "workflow_echo", {"q": "x"}))
    assert not [n for n in names if n.startswith("workflow_")]
    assert refused.is_error and "lacks the scope 'workflows'" in text(refused)

    names, done = asyncio.run(_http_client_call(url, key, "workflow_echo", {"q": "hey"}))
    assert "workflow_echo" in names and "kb_search" not in names
    assert not done.is_error and text(done) == "hey"
    engine = FlowEngine(load_settings(home=home))
    try:
        (run,) = engine.store.list_runs("echo")
        assert run.status == "done" and run.started_by == runner.id  # ran as the caller
    finally:
        engine.close()
