"""The hostile tools of the robustness suite (``bench/agent_robustness.py``): tools that raise,
hang (async, sync, ignoring cancellation, blocking the loop), return 20 MB or values JSON cannot
hold, and a small MCP server (``mcp`` SDK, run as a subprocess) that crashes, hangs or raises.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hanlin.agents.tools.base import AgentTool, tool

ToolsFactory = Callable[[AsyncExitStack, "Context"], Awaitable[list[AgentTool]]]


@dataclass
class Context:
    """What a scenario's tools may need: a scratch folder (MCP server scripts go there)."""

    tmp: Path
    release: threading.Event = field(default_factory=threading.Event)


# --- tools -----------------------------------------------------------------------------------


def _tools(*made: Callable[[Context], AgentTool]) -> ToolsFactory:
    async def factory(stack: AsyncExitStack, ctx: Context) -> list[AgentTool]:
        return [m(ctx) for m in made]

    return factory


def _weather(ctx: Context) -> AgentTool:
    @tool
    def get_weather(city: str, metric: bool = True) -> str:
        """The weather in a city.

        Args:
            city: the city's name
            metric: degrees Celsius (else Fahrenheit)
        """
        return f"18 {'°C' if metric else '°F'} in {city[:40]}"

    return get_weather


def _add(ctx: Context) -> AgentTool:
    @tool
    def add(a: int, b: int, extra: list[int] | None = None) -> int:
        """Add whole numbers."""
        return a + b + sum(extra or [])

    return add


def _raising(ctx: Context) -> AgentTool:
    @tool
    def explode() -> str:
        """Always fails."""
        raise RuntimeError("disk on fire")

    return explode


def _exiting(ctx: Context) -> AgentTool:
    @tool
    def legacy_cli() -> str:
        """Wraps a script that calls sys.exit."""
        sys.exit(2)

    return legacy_cli


def _hanlin_error(ctx: Context) -> AgentTool:
    @tool
    def lookup(key: str) -> str:
        """Look a key up."""
        from hanlin.errors import NotFoundError

        raise NotFoundError(f"no entry '{key}'", hint="list the keys first")

    return lookup


def _hang_async(ctx: Context) -> AgentTool:
    @tool(timeout=0.5)
    async def hang_async() -> str:
        """Never returns."""
        await asyncio.Event().wait()
        return "never"

    return hang_async


def _hang_sync(ctx: Context) -> AgentTool:
    @tool(timeout=0.5)
    def hang_sync() -> str:
        """Blocks its thread (until the benchmark lets it go)."""
        ctx.release.wait(60)
        return "late"

    return hang_sync


def _block_loop(ctx: Context) -> AgentTool:
    @tool(timeout=0.3)
    async def blocks_loop() -> str:
        """An async tool that blocks the event loop with a sync sleep."""
        time.sleep(1.0)
        return "woke up"

    return blocks_loop


def _hang_forever(ctx: Context) -> AgentTool:
    @tool(timeout=None)
    async def hang_forever() -> str:
        """Never returns, and has no timeout of its own."""
        await asyncio.Event().wait()
        return "never"

    return hang_forever


def _stubborn(ctx: Context) -> AgentTool:
    @tool(timeout=0.5)
    async def stubborn() -> str:
        """Swallows cancellation and keeps going."""
        for _ in range(40):
            try:
                await asyncio.sleep(0.25)
            except asyncio.CancelledError:
                continue
        return "finally"

    return stubborn


def _huge(ctx: Context) -> AgentTool:
    @tool
    def dump() -> str:
        """Returns 20 MB of text."""
        return "x" * 20_000_000

    return dump


def _odd_values(ctx: Context) -> AgentTool:
    @tool
    def odd() -> dict[str, Any]:
        """Returns values JSON cannot hold."""
        return {"set": {1, 2}, "obj": object(), "bytes": b"\xff\x00", "path": Path("/tmp")}

    return odd


def _circular(ctx: Context) -> AgentTool:
    @tool
    def circular() -> list[Any]:
        """Returns a list that contains itself."""
        a: list[Any] = []
        a.append(a)
        return a

    return circular


def _bad_str(ctx: Context) -> AgentTool:
    class Evil:
        def __str__(self) -> str:
            raise ValueError("cannot print me")

    @tool
    def evil() -> Any:
        """Returns an object whose str() raises."""
        return Evil()

    return evil


def _slow(ctx: Context) -> AgentTool:
    @tool(timeout=5)
    async def slow(n: int = 0) -> int:
        """Takes 0.3 s."""
        await asyncio.sleep(0.3)
        return n

    return slow


def _fast_sync(ctx: Context) -> AgentTool:
    @tool(timeout=2)
    def fast_sync() -> str:
        """A quick sync tool."""
        return "fast"

    return fast_sync


# --- MCP -------------------------------------------------------------------------------------

MCP_SERVER = '''
import asyncio, os, sys, time
from mcp.server.mcpserver import MCPServer

server = MCPServer("hostile")

@server.tool()
def echo(text: str) -> str:
    """Say the text back."""
    return "echo: " + text

@server.tool()
def crash() -> str:
    """Exit the process in the middle of the call."""
    print("hostile: simulated crash", file=sys.stderr, flush=True)
    os._exit(3)

@server.tool()
async def sleep(seconds: float) -> str:
    """Answer after some seconds."""
    await asyncio.sleep(seconds)
    return "awake"

@server.tool()
def boom() -> str:
    """Raise inside the tool."""
    raise RuntimeError("the tool blew up")

if __name__ == "__main__":
    if os.environ.get("MODE") == "hang":
        time.sleep(3600)
    server.run()
'''


def mcp_tools(mode: str = "", command: str | None = None) -> ToolsFactory:
    """Tools from the hostile MCP server (a subprocess), read-only so no approval is asked."""

    async def factory(stack: AsyncExitStack, ctx: Context) -> list[AgentTool]:
        from hanlin.agents.mcp import McpToolset

        script = ctx.tmp / "hostile_mcp_server.py"
        if not script.exists():
            script.write_text(MCP_SERVER)
        cfg: dict[str, Any] = {
            "command": command or sys.executable,
            "args": [str(script)],
            "timeout": 3.0,
            "startup_timeout": 2.0 if mode == "hang" else 20.0,
        }
        if mode:
            cfg["env"] = {"MODE": mode}
        toolset = await stack.enter_async_context(McpToolset({"hostile": cfg}, max_restarts=1))
        for t in toolset.tools:
            t.side_effects = frozenset({"read_only"})
        return list(toolset.tools)

    return factory
