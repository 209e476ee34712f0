"""Hanlin's MCP client: configuration, a real third-party server (the reference "everything"
server from npm), misbehaving servers (crash mid-call, hang, never start), and an agent whose
tools come from MCP servers, against the fake OpenAI-compatible upstream."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hanlin.agents.loop import Agent, AgentLimits, ApprovalPolicy
from hanlin.agents.mcp import McpError, McpToolset, configured_servers, parse_servers
from hanlin.cli.main import main
from hanlin.config import load_settings
from hanlin.errors import ConfigError
from hanlin.models.gateway import Gateway
from hanlin.testing.upstream import UpstreamServer
from tests.agents.mcp.conftest import CHAT_PATH as PATH
from tests.agents.mcp.conftest import FLAKY, sent_messages
from tests.agents.mcp.conftest import text_reply as answer
from tests.agents.mcp.conftest import tool_calls_reply as calls_stream

FLAKY_CFG: dict[str, Any] = {"command": sys.executable, "args": [FLAKY], "timeout": 3}


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# -- configuration ---------------------------------------------------------------------------


def test_hanlin_toml_mcp_servers_in_the_common_shape(
    hanlin_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (hanlin_home / "hanlin.toml").write_text(
        """
[mcpServers.time]
command = "uvx"
args = ["mcp-server-time", "--local-timezone", "UTC"]
env = { TZ = "UTC" }

[mcpServers.docs]
url = "https://mcp.example.com/mcp"
headers = { Authorization = "Bearer ${DOCS_TOKEN}" }
timeout = 10

[mcpServers.off]
command = "x"
disabled = true
""",
        "utf-8",
    )
    servers = configured_servers(load_settings())
    assert set(servers) == {"time", "docs"}
    assert servers["time"].transport == "stdio" and servers["time"].env == {"TZ": "UTC"}
    assert servers["docs"].transport == "http" and servers["docs"].timeout == 10
    assert "DOCS_TOKEN" not in repr(servers["docs"])  # headers are not printed
    with pytest.raises(ConfigError, match=r"\$\{DOCS_TOKEN\}, which is not set"):
        servers["docs"].resolved_headers()
    monkeypatch.setenv("DOCS_TOKEN", "s3cret")
    assert servers["docs"].resolved_headers() == {"Authorization": "Bearer s3cret"}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"command": "a", "url": "http://x/mcp"}, "either `command`"),
        ({}, "either `command`"),
        ({"url": "ftp://x"}, "must start with http"),
        ({"command": "a", "argz": []}, "argz"),
        ({"url": "http://x/mcp", "env": {"A": "1"}}, "command` servers only"),
    ],
)
def test_invalid_entries_name_the_server(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=r"\[mcpServers\.bad\]") as info:
        parse_servers({"bad": entry})
    assert message in info.value.message


def test_cli_lists_configured_servers(
    hanlin_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (hanlin_home / "hanlin.toml").write_text(
        '[mcpServers.flaky]\ncommand = "python"\nargs = ["flaky.py"]\nenv = { KEY = "hidden" }\n',
        "utf-8",
    )
    main(["mcp", "ls", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert rows == [
        {"name": "flaky", "transport": "stdio", "target": "python flaky.py", "timeout": 60.0}
        | {"disabled": False}
    ]


# -- misbehaving servers ---------------------------------------------------------------------


@pytest.mark.slow
def test_a_server_that_dies_mid_call_is_an_error_result_and_restarts() -> None:
    async def go() -> None:
        async with McpToolset({"flaky": FLAKY_CFG}) as ts:
            tools = {t.name: t for t in ts.tools}
            assert set(tools) == {"flaky__echo", "flaky__crash", "flaky__sleep"}
            assert not tools["flaky__echo"].needs_approval  # readOnlyHint + closed world
            assert tools["flaky__crash"].needs_approval  # no hints: MCP's defaults
            crashed = await tools["flaky__crash"].run({})
            assert crashed.is_error and "closed the connection during the call" in crashed.content
            assert "simulated crash" in crashed.content  # the server's stderr tail
            again = await tools["flaky__echo"].run({"text": "still here"})
            assert again.content == "echo: still here" and not again.is_error

    run(go())


@pytest.mark.slow
def test_a_hanging_call_times_out_and_bad_arguments_never_reach_the_server() -> None:
    async def go() -> None:
        async with McpToolset({"flaky": {**FLAKY_CFG, "timeout": 1}}) as ts:
            sleep = next(t for t in ts.tools if t.name == "flaky__sleep")
            started = time.monotonic()
            slow = await sleep.run({"seconds": 30})
            assert slow.is_error and "did not answer within 1 s" in slow.content
            assert time.monotonic() - started < 5
            wrong = await sleep.run({"seconds": "long"})
            assert wrong.is_error and "invalid arguments for flaky__sleep" in wrong.content
            assert (await sleep.run({"seconds": 0})).content == "awake"

    run(go())


@pytest.mark.slow
def test_servers_that_never_start_are_reported_not_fatal() -> None:
    servers = {
        "missing": {"command": "no-such-mcp-server-binary"},
        "hangs": {**FLAKY_CFG, "env": {"MODE": "hang"}, "startup_timeout": 1.5},
        "flaky": FLAKY_CFG,
    }

    async def go() -> None:
        started = time.monotonic()
        async with McpToolset(servers) as ts:
            assert time.monotonic() - started < 10
            assert "command not found" in ts.errors["missing"]
            assert "did not start within 1.5 s" in ts.errors["hangs"]
            assert {t.name for t in ts.tools} == {"flaky__echo", "flaky__crash", "flaky__sleep"}
        with pytest.raises(McpError, match="did not start"):
            async with McpToolset({"hangs": servers["hangs"]}, strict=True):
                pass

    run(go())


# -- a real third-party server ---------------------------------------------------------------


@pytest.fixture()
def everything(npm_dir: Path) -> dict[str, Any]:
    script = npm_dir / "node_modules/@modelcontextprotocol/server-everything/dist/index.js"
    return {"command": "node", "args": [str(script), "stdio"], "startup_timeout": 60}


@pytest.mark.slow
def test_the_reference_everything_server_from_npm(everything: dict[str, Any]) -> None:
    async def go() -> None:
        async with McpToolset({"ev": everything}) as ts:
            tools = {t.name: t for t in ts.tools}
            assert tools["ev__echo"].parameters["required"] == ["message"]
            assert (await tools["ev__echo"].run({"message": "你好"})).content == "Echo: 你好"
            total = await tools["ev__get-sum"].run({"a": 2, "b": 40})
            assert "42" in total.content
            image = await tools["ev__get-tiny-image"].run({})
            assert "[image: image/png" in image.content  # described, not dumped as base64
            resources = await ts.list_resources()
            assert resources and all(r.server == "ev" for r in resources)
            body = await ts.read_resource("ev", resources[0].uri)
            assert body[0].text or body[0].data
            prompts = {p.name: p for p in await ts.list_prompts("ev")}
            assert ("city", "Name of the city", True) in prompts["args-prompt"].arguments
            messages = await ts.get_prompt("ev", "args-prompt", {"city": "Hangzhou"})
            assert "Hangzhou" in messages[0].text

    run(go())


# -- an agent with MCP tools -------------------------------------------------------------------


@pytest.fixture()
def gateway() -> Iterator[tuple[Gateway, UpstreamServer]]:
    with UpstreamServer() as upstream:
        cfg: dict[str, Any] = {
            "endpoints": {"fake": {"base_url": upstream.url}},
            "retries": 0,
            "cooldown": 0.0,
        }
        gw = Gateway(load_settings(models=cfg))
        yield gw, upstream
        gw.close()


@pytest.mark.slow
def test_agent_uses_mcp_tools_and_survives_a_server_dying(
    gateway: tuple[Gateway, UpstreamServer],
) -> None:
    gw, upstream = gateway
    upstream.app.script(
        PATH,
        calls_stream(("flaky__echo", '{"text": "hi"}')),
        calls_stream(("flaky__crash", "{}")),
        answer("The echo worked; the other tool crashed."),
    )

    async def go() -> Any:
        async with McpToolset({"flaky": FLAKY_CFG}) as ts:
            agent = Agent(
                gw,
                "fake/m",
                ts.tools,
                limits=AgentLimits(max_steps=3, max_seconds=60),
                approval=ApprovalPolicy(auto_approve={"flaky__crash"}),
            )
            return await agent.arun("echo hi, then crash")

    # a crash kills every call in flight on that server, so the script calls one per step

    result = run(go())
    assert result.stop_reason == "answer"
    assert result.text == "The echo worked; the other tool crashed."
    tool_messages = [m for m in sent_messages(upstream, 2) if m["role"] == "tool"]
    # the model reads the result as data, in an untrusted block (docs/guard.md)
    assert (
        tool_messages[0]["content"]
        == '<untrusted source="tool:flaky__echo">\necho: hi\n</untrusted>'
    )

    assert "closed the connection during the call" in tool_messages[1]["content"]
    names = [t["function"]["name"] for t in upstream.app.requests[0][2]["tools"]]
    assert names == ["flaky__echo", "flaky__crash", "flaky__sleep"]
    # each MCP call is a client span under the agent's execute_tool span, failures marked
    from hanlin.tracing import TraceQuery, setup

    assert setup.flush(10)
    store = setup.current_store()
    assert store is not None
    (trace,) = store.list_traces(TraceQuery())
    spans = {s.name: s for s in store.get_trace(trace.trace_id)}
    echo, crash = spans["tools/call echo"], spans["tools/call crash"]
    assert echo.parent_id == spans["execute_tool flaky__echo"].span_id
    assert echo.status == "ok" and echo.attributes["mcp.method.name"] == "tools/call"
    assert echo.attributes["hanlin.mcp.server"] == "flaky"
    assert "echo: hi" in echo.attributes["gen_ai.tool.call.result"]
    assert crash.status == "error" and "closed the connection" in (crash.error or "")


@pytest.mark.slow
def test_sync_agent_run_with_the_toolset_on_the_gateway_loop(
    gateway: tuple[Gateway, UpstreamServer],
) -> None:
    gw, upstream = gateway
    upstream.app.script(PATH, calls_stream(("flaky__echo", '{"text": "sync"}')), answer("Ok."))
    toolset = McpToolset({"flaky": FLAKY_CFG})
    gw.run_sync(toolset.connect())  # connections live on the gateway's loop, like Agent.run
    try:
        result = Agent(gw, "fake/m", toolset.tools).run("echo")
        assert result.stop_reason == "answer"
        tool_messages = [m for m in sent_messages(upstream, 1) if m["role"] == "tool"]
        assert tool_messages[0]["content"].splitlines()[1:] == ["echo: sync", "</untrusted>"]
        echo = next(t for t in toolset.tools if t.name == "flaky__echo")
        from_elsewhere = run(echo.run({"text": "other loop"}))  # handed over to its loop
        assert from_elsewhere.content == "echo: other loop"
    finally:
        gw.run_sync(toolset.aclose())
    closed = run(echo.run({"text": "late"}))
    assert closed.is_error and "was closed" in closed.content


@pytest.mark.slow
def test_an_http_server_that_dies_is_an_error_result_and_comes_back() -> None:
    from tests.agents.mcp.conftest import free_port, wait_http

    port = free_port()
    env = {**os.environ, "MODE": "http", "PORT": str(port)}
    url = f"http://127.0.0.1:{port}/mcp"

    def start() -> subprocess.Popen[str]:
        proc = subprocess.Popen([sys.executable, FLAKY], env=env, stderr=subprocess.PIPE, text=True)
        wait_http(url, proc)
        return proc

    async def go(proc: subprocess.Popen[str]) -> subprocess.Popen[str]:
        async with McpToolset({"web": {"url": url, "timeout": 5}}, strict=True) as ts:
            tools = {t.name: t for t in ts.tools}
            assert (await tools["web__echo"].run({"text": "a"})).content == "echo: a"
            crashed = await tools["web__crash"].run({})
            assert crashed.is_error and "closed the connection during the call" in crashed.content
            down = await tools["web__echo"].run({"text": "b"})
            assert down.is_error and "ConnectError" in down.content
            proc = await asyncio.to_thread(start)
            back = await tools["web__echo"].run({"text": "c"})
            assert back.content == "echo: c" and not back.is_error
            return proc

    proc = start()
    try:
        proc = run(go(proc))
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_cli_lists_a_servers_tools_and_reports_a_broken_one(
    hanlin_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (hanlin_home / "hanlin.toml").write_text(
        f"[mcpServers.flaky]\ncommand = {json.dumps(sys.executable)}\n"
        f"args = [{json.dumps(FLAKY)}]\n\n"
        '[mcpServers.broken]\ncommand = "no-such-mcp-server-binary"\n',
        "utf-8",
    )
    main(["mcp", "tools", "flaky", "--json"])
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"flaky__echo", "flaky__crash", "flaky__sleep"}
    assert rows["flaky__crash"]["needs_approval"] and not rows["flaky__echo"]["needs_approval"]
    assert rows["flaky__sleep"]["input_schema"]["required"] == ["seconds"]
    with pytest.raises(SystemExit) as info:
        main(["mcp", "tools", "broken"])
    err = " ".join(capsys.readouterr().err.split())
    assert info.value.code == 1 and "command not found" in err and "[mcpServers.broken]" in err
