"""One operation, one library function: the CLI, the HTTP API and the MCP server give the same
result for each operation they share — removing a knowledge base leaves the same state on disk,
and knowledge bases, documents and search results have the same fields everywhere."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from mcp import Client

from hanlin.cli.main import main
from hanlin.config import Settings
from hanlin.knowledge.kb import KnowledgeBase
from hanlin.mcpserver.server import build_server
from hanlin.models.catalog import Catalog
from hanlin.models.keys import KeyStore, Secret, endpoint_key_status
from hanlin.server.app import create_app
from tests.server.conftest import build_kb, make_settings

pytestmark = pytest.mark.slow
BEES = "# Bees\n\nBees make honey from nectar and store it in wax combs.\n"


def settings_for(home: Path) -> Settings:
    return make_settings(home, "http://127.0.0.1:9")  # no model calls here


def mcp_call(settings: Settings, tool: str, args: dict[str, Any]) -> Any:
    async def go() -> Any:
        async with Client(build_server(settings).server) as client:
            result = await client.call_tool(tool, args)
            assert not result.is_error, result
            return json.loads("".join(c.text for c in result.content if c.type == "text"))

    return asyncio.run(go())


def mcp_document_meta(settings: Settings, kb: str) -> list[dict[str, Any]]:
    """Every document of ``kb`` as the MCP server describes it when a client reads it."""

    async def go() -> list[dict[str, Any]]:
        async with Client(build_server(settings).server) as client:
            listed = (await client.list_resources()).resources
            metas = []
            for r in listed:
                read = await client.read_resource(str(r.uri))
                metas.append(read.meta["hanlin/document"])  # type: ignore[index]
            return metas

    return asyncio.run(go())


def cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    capsys.readouterr()
    assert main(list(args)) in (0, None)
    return json.loads(capsys.readouterr().out)


def owned_paths(home: Path, kb: str) -> list[Path]:
    """What on disk belongs to the knowledge base ``kb``."""
    return [p for p in (home / "kb" / kb, home / "uploads" / kb) if p.exists()]


def tree(home: Path) -> set[str]:
    """The knowledge-base and upload folders under ``home`` (files inside have random names)."""
    return {
        f"{folder}/{p.name}"
        for folder in ("kb", "uploads")
        if (home / folder).exists()
        for p in (home / folder).iterdir()
    }


def filled_home(home: Path) -> Settings:
    """A knowledge base ``docs`` from a folder, plus a file uploaded through the MCP server."""
    settings = settings_for(home)
    build_kb(settings).close()
    added = mcp_call(
        settings, "kb_add", {"kb": "docs", "files": [{"name": "bees.md", "content": BEES}]}
    )
    assert added["documents_added"] == 1
    assert owned_paths(home, "docs") == [home / "kb" / "docs", home / "uploads" / "docs"]
    return settings


def test_kb_rm_and_delete_api_leave_the_same_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_cli, by_api = tmp_path / "cli", tmp_path / "api"
    filled_home(by_cli)
    api_settings = filled_home(by_api)
    for home in (by_cli, by_api):  # a neighbour that must survive
        KnowledgeBase.create("keep", settings=settings_for(home)).close()
        (home / "uploads" / "keep").mkdir()
    assert (
        tree(by_cli)
        == tree(by_api)
        == {
            "kb/docs",
            "kb/keep",
            "uploads/docs",
            "uploads/keep",
        }
    )

    monkeypatch.setenv("HANLIN_HOME", str(by_cli))
    assert main(["kb", "rm", "docs", "--yes"]) in (0, None)
    with TestClient(create_app(api_settings)) as client:
        assert client.delete("/api/kb/docs").status_code == 204

    assert owned_paths(by_cli, "docs") == [] == owned_paths(by_api, "docs")
    assert tree(by_cli) == tree(by_api) == {"kb/keep", "uploads/keep"}


def test_kb_info_documents_and_search_have_one_shape(
    hanlin_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = filled_home(hanlin_home)
    with TestClient(create_app(settings)) as client:
        api_list = client.get("/api/kb").json()["data"]
        api_info = client.get("/api/kb/docs").json()
        api_docs = client.get("/api/kb/docs/documents").json()["data"]
        api_hits = client.post("/api/kb/docs/search", json={"query": "honey", "k": 3}).json()
    with KnowledgeBase("docs", settings) as kb:
        info, names = kb.info(), kb.public_names()
        library_docs = [d.to_dict(names) for d in kb.documents()]

    # list and show: the library's dicts; the CLI on the server's own machine adds the folder
    assert cli_json(capsys, "kb", "ls", "--json") == api_list == [info.summary()]
    assert api_info == info.to_dict()
    cli_info = cli_json(capsys, "kb", "show", "docs", "--json")
    assert set(cli_info) == set(api_info) | {"path"}
    assert {k: cli_info[k] for k in ("documents", "chunks", "files", "vectors")} == {
        k: api_info[k] for k in ("documents", "chunks", "files", "vectors")
    }
    assert all(s["uri"].startswith(str(hanlin_home)) for s in cli_info["sources"])
    assert not any(str(hanlin_home) in s["uri"] for s in api_info["sources"])

    # documents: one record shape (the API adds files still being ingested in the same shape)
    assert api_docs == library_docs and len(api_docs) == 4
    cli_docs = cli_json(capsys, "kb", "docs", "docs", "--json")
    assert [set(d) for d in cli_docs] == [set(d) for d in api_docs]
    assert [d["id"] for d in cli_docs] == [d["id"] for d in api_docs]
    mcp_docs = sorted(mcp_document_meta(settings, "docs"), key=lambda d: d["id"])
    assert mcp_docs == sorted(api_docs, key=lambda d: d["id"])

    # search results: the same fields and order on every surface (MCP shortens long texts)
    cli_hits = cli_json(capsys, "kb", "search", "docs", "honey", "-k", "3", "--json")
    mcp_hits = mcp_call(settings, "kb_search", {"kb": "docs", "query": "honey", "k": 3})
    assert api_hits["data"][0]["title"] == "Bees"
    for hits in (cli_hits, mcp_hits):
        assert [set(h) for h in hits] == [set(h) for h in api_hits["data"]]
        assert [h["id"] for h in hits] == [h["id"] for h in api_hits["data"]]
    assert [h["source"] for h in mcp_hits] == [h["source"] for h in api_hits["data"]]


@pytest.mark.parametrize(
    ("command", "cli_args", "body"),
    [
        (
            "train",
            ["--model", "llama3-8b", "--tokens", "15T", "--gpu", "H100", "--gpus", "64"],
            {"model": "llama3-8b", "tokens": "15T", "gpu": "H100", "gpus": 64},
        ),
        (
            "finetune",
            ["--model", "llama3-8b", "--gpu", "A100-80G", "--method", "qlora", "--tokens", "1B"],
            {"model": "llama3-8b", "gpu": "A100-80G", "method": "qlora", "tokens": "1B"},
        ),
        (
            "serve",
            ["--model", "llama3-8b", "--gpu", "A100-80G", "--context", "8k"],
            {"model": "llama3-8b", "gpu": "A100-80G", "context": "8k"},
        ),
    ],
)
def test_compute_plans_are_the_same_from_the_cli_and_the_api(
    hanlin_home: Path,
    capsys: pytest.CaptureFixture[str],
    command: str,
    cli_args: list[str],
    body: dict[str, Any],
) -> None:
    from_cli = cli_json(capsys, "compute", command, *cli_args, "--json")
    with TestClient(create_app(settings_for(hanlin_home))) as client:
        answered = client.post(f"/api/compute/{command}", json=body)
    assert answered.status_code == 200, answered.text
    assert from_cli == answered.json()
    if command == "train":
        assert from_cli["training"]["assumptions"][0] == "no mfu given: assumed 0.4"


def test_key_status_is_the_same_for_keys_ls_models_ls_and_v1_models(
    hanlin_home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(hanlin_home)
    for name in ("OPENAI_API_KEY", "DEEPSEEK_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DEEPSEEK_API_KEY", "  sk-deepseek-from-env-0001\n")  # pasted with a newline
    store = KeyStore(hanlin_home / "keys.json")
    store.set("deepseek", "sk-deepseek-in-the-file-0002")
    store.set("openai", "sk-openai-in-the-file-0003")

    deepseek = endpoint_key_status(Catalog(settings.models).endpoints["deepseek"], store)
    assert deepseek.source == "env" and deepseek.secret == Secret("sk-deepseek-from-env-0001")

    listed = cli_json(capsys, "keys", "ls", "--json")
    rows = {(r["provider"], r["source"]): r for r in listed}
    assert rows["deepseek", "env"]["in_use"] and not rows["deepseek", "file"]["in_use"]
    assert rows["openai", "file"]["in_use"] and ("anthropic", "file") not in rows
    assert "sk-" not in json.dumps(listed)  # masked: the last four characters at most

    models = cli_json(capsys, "models", "ls", "--json")
    by_endpoint = {m["endpoint"]: m["key"] for m in models}
    assert by_endpoint["deepseek"] == "env" and by_endpoint["openai"] == "file"
    assert by_endpoint["anthropic"] == "missing" and by_endpoint["local"] == "not needed"

    with TestClient(create_app(settings)) as client:
        data = client.get("/v1/models", params={"all": "true"}).json()["data"]
        runnable = {m["owned_by"] for m in client.get("/v1/models").json()["data"]}
    available = {m["owned_by"]: m["hanlin"]["available"] for m in data if "hanlin" in m}
    assert available["deepseek"] and available["openai"] and available["local"]
    assert available["anthropic"] is False
    assert {"deepseek", "openai", "local"} <= runnable and "anthropic" not in runnable
