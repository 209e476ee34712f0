"""Fixtures for the MCP tests: a small knowledge base, free loopback ports, subprocess servers
(``hanlin mcp serve``), and the npm packages (the reference "everything" MCP server and the
conformance suite) installed once into a cache folder."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hanlin.config import Settings, load_settings
from hanlin.testing import recordings as rec
from hanlin.testing.upstream import Reply, UpstreamServer
from tests.server.conftest import build_kb

#: the reference server (`npx @modelcontextprotocol/server-everything`) and the suite, pinned
NPM_PACKAGES = ["@modelcontextprotocol/server-everything@2026.8.31"]
CONFORMANCE = "@modelcontextprotocol/conformance@0.1.13"
FLAKY = str(Path(__file__).with_name("flaky_server.py"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def kb_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A HANLIN_HOME with the knowledge base ``docs`` (tea, rivers, garden)."""
    home = tmp_path_factory.mktemp("mcp-home")
    build_kb(kb_settings(home)).close()
    return home


def kb_settings(home: Path, **server: object) -> Settings:
    return load_settings(home=home, knowledge={"embed_workers": 1}, server=server)


@pytest.fixture(scope="session")
def npm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``node_modules`` with the npm packages the tests use; skips when npm cannot get them."""
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("node/npm are not installed: the npm MCP server tests need Node >= 18")
    cache = Path(os.environ.get("HANLIN_TEST_NPM_DIR", Path.home() / ".cache" / "hanlin-tests"))
    folder = cache / "npm"
    wanted = [*NPM_PACKAGES, CONFORMANCE]
    marker = folder / ("installed-" + "+".join(p.replace("/", "_") for p in wanted))
    if not marker.exists():
        folder.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(folder), *wanted],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if proc.returncode != 0:
            pytest.skip(f"cannot install {' '.join(wanted)} from npm: {proc.stderr[-500:]}")
        marker.touch()
    return folder


def wait_http(url: str, proc: subprocess.Popen[str], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            assert proc.poll() is None, f"the server exited: {proc.stderr and proc.stderr.read()}"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)


@pytest.fixture()
def http_server(kb_home: Path) -> Iterator[tuple[str, Path]]:
    """``hanlin mcp serve --http`` on a free loopback port; yields (url, its HANLIN_HOME)."""
    yield from _serve(kb_home, {})


@pytest.fixture()
def keyed_http_server(kb_home: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The same with ``server.require_keys``: every request needs an API key."""
    home = tmp_path / "home"
    shutil.copytree(kb_home, home)
    from hanlin.access.apikeys import APIKeyStore

    APIKeyStore(home / "apikeys.json").create(["admin"], name="boot")  # it refuses to start keyless
    yield from _serve(home, {"HANLIN_SERVER__REQUIRE_KEYS": "true"})


def _serve(home: Path, extra_env: dict[str, str]) -> Iterator[tuple[str, Path]]:
    port = free_port()
    env = {**os.environ, "HANLIN_HOME": str(home), **extra_env}
    cmd = [sys.executable, "-m", "hanlin", "mcp", "serve", "--http", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/mcp", proc)
        yield f"http://127.0.0.1:{port}/mcp", home
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- scripting the fake OpenAI-compatible upstream (the shapes tests/agents/test_loop.py uses) --

CHAT_PATH = "/v1/chat/completions"


def tool_calls_reply(*calls: tuple[str, str]) -> Reply:
    """A streamed assistant turn with one tool call per (name, JSON arguments)."""
    head = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": rec.CREATED}
    head["model"] = "gpt-4o-mini"

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        return "data: " + json.dumps(
            {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        )

    events = [chunk({"role": "assistant", "content": None})]
    for i, (name, args) in enumerate(calls):
        call = {"index": i, "id": f"call_{i}_{name}", "type": "function"}
        events.append(
            chunk({"tool_calls": [{**call, "function": {"name": name, "arguments": args}}]})
        )
    events.append(chunk({}, "tool_calls"))
    usage = {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29}
    events += ["data: " + json.dumps({**head, "choices": [], "usage": usage}), "data: [DONE]"]
    return Reply(sse=events)


def text_reply(text: str) -> Reply:
    return rec.openai_text_stream("openai", [text[:3], text[3:]])


def sent_messages(upstream: UpstreamServer, n: int) -> list[dict[str, Any]]:
    """The messages of the n-th chat request the upstream received."""
    bodies = [body for path, _, body in upstream.app.requests if path == CHAT_PATH]
    messages: list[dict[str, Any]] = bodies[n]["messages"]
    return messages
