"""A small MCP server standing in for a misbehaving third-party one (run as a script, stdio).

``MODE=hang`` never answers the handshake; ``MODE=http PORT=n`` serves streamable HTTP on
127.0.0.1:n instead of stdio. It serves ``echo`` (read-only), ``crash``
(the process exits mid-call, stderr says why) and ``sleep`` (answers after N seconds).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

server = MCPServer("flaky")


@server.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
def echo(text: str) -> str:
    """Say the text back."""
    return f"echo: {text}"


@server.tool()
def crash() -> str:
    """Exit the process in the middle of the call."""
    print("flaky: simulated crash (segfault in native code)", file=sys.stderr, flush=True)
    os._exit(3)


@server.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
async def sleep(seconds: float) -> str:
    """Answer after some seconds."""
    await asyncio.sleep(seconds)
    return "awake"


if __name__ == "__main__":
    if os.environ.get("MODE") == "hang":
        time.sleep(3600)
    elif os.environ.get("MODE") == "http":
        server.run("streamable-http", port=int(os.environ["PORT"]))
    else:
        server.run()
