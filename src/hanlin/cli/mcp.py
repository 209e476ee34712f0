"""``hanlin mcp …``: serve Hanlin over MCP (stdio or streamable HTTP), and inspect the MCP
servers configured in ``hanlin.toml`` (``[mcpServers.<name>]``)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hanlin.config import load_settings

app = typer.Typer(
    help="MCP: serve Hanlin to MCP clients; list configured MCP servers and their tools.",
    no_args_is_help=True,
)
out = Console()
err = Console(stderr=True)


@app.command()
def serve(
    http: Annotated[bool, typer.Option("--http", help="streamable HTTP instead of stdio")] = False,
    host: Annotated[str, typer.Option(help="address to bind (--http); others need keys")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="port (--http)")] = 8322,
    kb: Annotated[
        list[str] | None,
        typer.Option("--kb", help="serve only this knowledge base (repeat for more)"),
    ] = None,
) -> None:
    """Serve knowledge bases, prompt templates and tools over MCP (stdio by default).

    Over stdio the client is the local user: kb_add may also read local paths. Over HTTP the
    endpoint is http://HOST:PORT/mcp and API keys (`hanlin apikeys create`) work as for
    `hanlin serve`: required off loopback, scopes kb:read / kb:write / chat respected.
    """
    from hanlin.mcpserver.http import http_app, serve_stdio
    from hanlin.mcpserver.server import build_server

    settings = load_settings()
    mcp = build_server(settings, knowledge_bases=kb or None, allow_paths=not http)
    if not http:
        err.print("[bold green]Hanlin[/] MCP server on stdio (stop with Ctrl-C)", highlight=False)
        asyncio.run(serve_stdio(mcp))
        return
    import uvicorn

    asgi = http_app(mcp, host)
    shown = f"[{host}]" if ":" in host else host
    err.print(f"[bold green]Hanlin[/] MCP server on [bold]http://{escape(shown)}:{port}/mcp[/]")
    err.print("  stop with Ctrl-C", style="dim")
    uvicorn.run(asgi, host=host, port=port, log_level="warning", timeout_graceful_shutdown=3)


@app.command("ls")
def ls(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List the MCP servers configured in hanlin.toml (no env or header values)."""
    from hanlin.agents.mcp.config import parse_servers

    servers = parse_servers(load_settings().mcp_servers)
    rows: list[dict[str, Any]] = [
        {
            "name": name,
            "transport": cfg.transport,
            "target": cfg.describe(),
            "timeout": cfg.timeout,
            "disabled": cfg.disabled,
        }
        for name, cfg in servers.items()
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        err.print(
            "no MCP servers configured: add [mcpServers.NAME] with command or url to hanlin.toml",
            markup=False,
        )
        return
    table = Table("name", "transport", "command / url", "timeout", "")
    for r in rows:
        table.add_row(
            escape(r["name"]),
            r["transport"],
            escape(r["target"]),
            f"{r['timeout']:g} s",
            "disabled" if r["disabled"] else "",
        )
    out.print(table)


@app.command("tools")
def tools(
    name: Annotated[str, typer.Argument(help="the server's name in [mcpServers]")],
    as_json: Annotated[
        bool, typer.Option("--json", help="print JSON (with input schemas)")
    ] = False,
) -> None:
    """Connect to one configured MCP server and list its tools as agents see them."""
    from hanlin.agents.mcp.toolset import McpToolset

    async def fetch() -> list[dict[str, Any]]:
        toolset = McpToolset.from_settings(load_settings(), [name])
        toolset.strict = True
        async with toolset as ts:
            return [
                {
                    "name": t.name,
                    "side_effects": sorted(t.side_effects),
                    "needs_approval": t.needs_approval,
                    "description": t.description,
                    "input_schema": t.parameters,
                }
                for t in ts.tools
            ]

    rows = asyncio.run(fetch())
    if as_json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    table = Table("tool", "side effects", "description")
    for r in rows:
        effects = ", ".join(r["side_effects"]) + (" (asks)" if r["needs_approval"] else "")
        table.add_row(r["name"], effects, escape(r["description"]))
    out.print(table)
    err.print(f"{len(rows)} tools from '{escape(name)}'", highlight=False)
