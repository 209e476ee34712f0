"""Fixtures for the MCP client tests — free loopback ports, waiting for an HTTP server, the npm
packages (the reference "everything" MCP server and the conformance suite) installed once into a
cache folder — and the fake upstream's scripts. The MCP server's tests (``tests/mcpserver/``)
import the shared ones."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from hanlin.testing import recordings as rec
from hanlin.testing.upstream import Reply, UpstreamServer

#: the reference server (`npx @modelcontextprotocol/server-everything`) and the suite, pinned
NPM_PACKAGES = ["@modelcontextprotocol/server-everything@2026.8.31"]
CONFORMANCE = "@modelcontextprotocol/conformance@0.1.13"
FLAKY = str(Path(__file__).with_name("flaky_server.py"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
