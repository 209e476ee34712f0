"""The MCP server (``hanlin mcp serve``) through the official MCP Python client: in memory,
over stdio (a real subprocess) and over streamable HTTP (with and without API keys)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import PromptReference

from hanlin.access.auth import open_apikeys
from hanlin.agents.mcp import McpToolset
from hanlin.config import load_settings
from hanlin.mcpserver.server import build_server
from hanlin.prompts import prompt_library
from hanlin.prompts.base import NewVersion
from tests.conftest import copy_home, database_url, use_database
from tests.mcpserver.conftest import kb_settings


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def text(result: Any) -> str:
    return "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")


@pytest.mark.slow
def test_in_memory_tools_resources_and_prompts(kb_home: Path) -> None:
    server = build_server(kb_settings(kb_home))

    async def go() -> None:
        async with Client(server.server) as client:
            names = [t.name for t in (await client.list_tools()).tools]
            assert names == [
                "kb_list",
                "kb_search",
                "kb_ask",
                "kb_add",
                "calculator",
                "current_time",
            ]
            assert json.loads(text(await client.call_tool("kb_list", {}))) == ["docs"]

            hits = await client.call_tool(
                "kb_search", {"kb": "docs", "query": "brew oolong", "k": 2}
            )
            assert not hits.is_error
            first = json.loads(text(hits))[0]
            assert first["source"].endswith("tea.md") and "90 degrees" in first["text"]

            asked = await client.call_tool(
                "kb_ask",
                {"kb": "docs", "question": "How hot should oolong be brewed?"}
                | {"mode": "extractive"},
            )
            answer = json.loads(text(asked))
            assert "90 degrees" in answer["answer"] and answer["citations"][0]["n"] == 1
            assert answer["citations"][0]["source"].endswith("tea.md")

            done = await client.complete(
                PromptReference(name="rag_answer"), {"name": "lang"} | {"value": "z"}
            )
            assert done.completion.values == ["zh"]

            calc = await client.call_tool("calculator", {"expression": "2 ** 10 + 1"})
            assert text(calc) == "1025"

            resources = (await client.list_resources()).resources
            tea = next(r for r in resources if r.name == "docs: Oolong tea")
            assert tea.uri.startswith("hanlin://kb/docs/doc/")
            read = await client.read_resource(tea.uri)
            body = read.contents[0].text  # type: ignore[union-attr]
            assert "partially oxidised" in body and "three minutes" in body
            assert body.count("Brew oolong at 90 degrees") == 1  # chunk overlaps removed

            prompts = {p.name: p for p in (await client.list_prompts()).prompts}
            assert {"rag_answer", "rag_rewrite"} <= set(prompts)
            assert [a.name for a in prompts["rag_rewrite"].arguments or []] == [
                "history",
                "question",
                "lang",
                "label",
            ]
            got = await client.get_prompt(
                "rag_rewrite", {"history": "user: tea?", "question": "and its price?", "lang": "zh"}
            )
            msg = got.messages[0].content.text  # type: ignore[union-attr]
            assert "改写" in msg and "and its price?" in msg and "user: tea?" in msg

    run(go())


def test_rag_prompts_come_from_the_registry_at_their_label(hanlin_home: Path) -> None:
    settings = kb_settings(hanlin_home)
    library = prompt_library(settings)
    bundled = library.get("rag.answer.en", label="production")
    made, _ = library.create(
        "rag.answer.en", NewVersion(text="V2 ANSWER. Cite like [n].\n\n{sources}"), "test"
    )
    library.create("rag.answer.en", NewVersion(text="TRY ME.\n{sources}"), "test", label="staging")
    server = build_server(settings)

    async def go() -> None:
        async with Client(server.server) as client:
            before = await client.get_prompt("rag_answer", {"sources": "[1] tea"})
            assert before.messages[0].content.text == bundled.text.format(sources="[1] tea")  # type: ignore[union-attr]
            library.set_label("rag.answer.en", "production", made.version, "test")
            after = await client.get_prompt("rag_answer", {"sources": "[1] tea"})
            assert after.messages[0].content.text == "V2 ANSWER. Cite like [n].\n\n[1] tea"  # type: ignore[union-attr]
            staged = await client.get_prompt("rag_answer", {"sources": "x", "label": "staging"})
            assert staged.messages[0].content.text == "TRY ME.\nx"  # type: ignore[union-attr]
            with pytest.raises(MCPError, match="not a label name"):
                await client.get_prompt("rag_answer", {"sources": "x", "label": "Bad Label"})

    run(go())


def test_in_memory_errors_are_results_the_model_can_read(kb_home: Path) -> None:
    server = build_server(kb_settings(kb_home))

    async def go() -> None:
        async with Client(server.server) as client:
            missing = await client.call_tool("kb_search", {"kb": "nosuch", "query": "x"})
            assert missing.is_error and "no knowledge base named 'nosuch'" in text(missing)
            assert "docs" in text(missing)  # says which exist
            bad = await client.call_tool("kb_search", {"kb": "docs"})
            assert bad.is_error and "'query' is a required property" in text(bad)
            calc = await client.call_tool("calculator", {"expression": "__import__('os')"})
            assert calc.is_error and "cannot evaluate" in text(calc)
            with pytest.raises(MCPError, match="unknown tool 'nope'"):
                await client.call_tool("nope", {})
            with pytest.raises(MCPError, match="no document 999999"):
                await client.read_resource("hanlin://kb/docs/doc/999999")
            with pytest.raises(MCPError, match="missing prompt arguments: sources"):
                await client.get_prompt("rag_answer", {})

    run(go())


@pytest.mark.slow
def test_kb_add_ingests_file_contents_and_refuses_bad_ones(
    kb_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = copy_home(kb_home, tmp_path / "home")
    use_database(monkeypatch, home)
    server = build_server(kb_settings(home))
    fake_pdf = "TVqQAAMAAAAEAAAA"  # base64 of a Windows executable header

    async def go() -> None:
        async with Client(server.server) as client:
            added = await client.call_tool(
                "kb_add",
                {
                    "kb": "docs",
                    "files": [
                        {"name": "bees.md", "content": "# Bees\n\nBees make honey from nectar."},
                        {"name": "x.pdf", "content": fake_pdf, "encoding": "base64"},
                    ],
                },
            )
            report = json.loads(text(added))
            assert report["documents_added"] == 1
            assert report["failed"][0]["item"] == "x.pdf"
            assert "Windows executable" in report["failed"][0]["reason"]
            hits = json.loads(
                text(await client.call_tool("kb_search", {"kb": "docs", "query": "honey nectar"}))
            )
            assert hits[0]["title"] == "Bees"
            paths = await client.call_tool("kb_add", {"kb": "docs", "paths": ["/etc/passwd"]})
            assert paths.is_error  # HTTP-style server: no local paths for clients

    run(go())


@pytest.mark.slow
def test_stdio_subprocess(kb_home: Path) -> None:
    env = {"HANLIN_HOME": str(kb_home), "PATH": os.environ.get("PATH", "")}
    url = database_url(kb_home)
    if url is not None:  # on PostgreSQL the knowledge base is in the home's database
        env["HANLIN_DATABASE_URL"] = url
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "hanlin", "mcp", "serve"], env=env
    )

    async def go() -> None:
        async with Client(params, read_timeout_seconds=120) as client:
            assert client.server_info and client.server_info.name == "hanlin"
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert "paths" in tools["kb_add"].input_schema["properties"]  # local user: paths ok
            assert tools["kb_search"].annotations and tools["kb_search"].annotations.read_only_hint
            hits = await client.call_tool("kb_search", {"kb": "docs", "query": "长江"})
            assert "rivers.md" in text(hits)
            now = await client.call_tool("current_time", {"timezone": "Asia/Shanghai"})
            assert json.loads(text(now))["timezone"] == "Asia/Shanghai"

    run(go())


async def _http_client_call(url: str, key: str | None, tool: str, args: dict[str, Any]) -> Any:
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"} if key else None)
    async with http, Client(streamable_http_client(url, http_client=http)) as client:
        names = [t.name for t in (await client.list_tools()).tools]
        return names, await client.call_tool(tool, args)


@pytest.mark.slow
def test_http_without_keys_on_loopback(http_server: tuple[str, Path]) -> None:
    url, _ = http_server
    names, hits = run(
        _http_client_call(url, None, "kb_search", {"kb": "docs", "query": "tomatoes"})
    )
    assert "kb_add" in names and "paths" not in names
    assert "garden.md" in text(hits)

    async def ours() -> None:  # Hanlin's own client over streamable HTTP, too
        async with McpToolset({"hanlin": {"url": url}}, strict=True) as ts:
            tools = {t.name: t for t in ts.tools}
            assert not tools["hanlin__kb_search"].needs_approval
            assert tools["hanlin__kb_add"].needs_approval
            found = await tools["hanlin__kb_search"].run({"kb": "docs", "query": "tomatoes"})
            assert "garden.md" in found.content and not found.is_error
            docs = await ts.list_resources("hanlin")
            assert len(docs) == 3 and all(d.uri.startswith("hanlin://kb/docs/") for d in docs)

    run(ours())


@pytest.mark.slow
def test_http_with_keys_and_scopes(keyed_http_server: tuple[str, Path]) -> None:
    url, home = keyed_http_server
    store = open_apikeys(load_settings(home=home))
    _, reader = store.create(["kb:read"], name="reader")
    _, other_kb = store.create(["kb:read"], kbs=["other"], name="other")

    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
    headers = {"Accept": "application/json, text/event-stream"}
    # keys made by another process reach a server on PostgreSQL within a second: wait for the
    # one made last (the file store's server sees them at once)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        auth = {**headers, "Authorization": f"Bearer {other_kb}"}
        if httpx.post(url, json=init, headers=auth).status_code != 401:
            break
        time.sleep(0.1)
    none = httpx.post(url, json=init, headers=headers)
    assert none.status_code == 401 and none.json()["error"]["code"] == "missing_api_key"
    wrong = httpx.post(url, json=init, headers={**headers, "Authorization": "Bearer hk-wrong"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"

    names, hits = run(_http_client_call(url, reader, "kb_search", {"kb": "docs", "query": "tea"}))
    assert "kb_search" in names and "kb_add" not in names and "calculator" not in names
    assert not hits.is_error and "tea.md" in text(hits)
    _, denied = run(_http_client_call(url, reader, "kb_add", {"kb": "docs", "urls": []}))
    assert denied.is_error and "lacks the scope 'kb:write'" in text(denied)
    _, fenced = run(_http_client_call(url, other_kb, "kb_search", {"kb": "docs", "query": "tea"}))
    assert fenced.is_error and "may not use the knowledge base 'docs'" in text(fenced)
    # choosing the generator is using chat: kb:read alone may not (checked by RAG itself)
    ask = {"kb": "docs", "question": "tea?", "model": "local/gemma3-270m", "mode": "generative"}
    _, chosen = run(_http_client_call(url, reader, "kb_ask", ask))
    assert chosen.is_error and "lacks the scope 'chat'" in text(chosen)
    extractive = {"kb": "docs", "question": "How long is oolong brewed?", "mode": "extractive"}
    _, plain = run(_http_client_call(url, reader, "kb_ask", extractive))
    assert not plain.is_error and "tea.md" in text(plain)


def test_http_off_loopback_without_keys_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    from hanlin.cli.main import main

    with pytest.raises(SystemExit) as info:
        main(["mcp", "serve", "--http", "--host", "0.0.0.0", "--port", "1"])
    err = " ".join(capsys.readouterr().err.split())
    assert info.value.code == 1 and "binds 0.0.0.0" in err and "hanlin apikeys create" in err
