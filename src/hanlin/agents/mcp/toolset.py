"""``McpToolset``: connections to several MCP servers at once, their tools as Hanlin tools,
and their resources and prompts. See :mod:`hanlin.agents.mcp.client` for one connection."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import mcp_types as mt

from hanlin.agents.mcp.client import (
    AnyArgs,
    McpConnection,
    McpError,
    McpTool,
    server_capabilities,
)
from hanlin.agents.mcp.config import McpServerConfig, parse_servers
from hanlin.agents.mcp.convert import (
    ResourceContent,
    block_text,
    input_schema,
    resource_contents,
    side_effects,
    tool_name,
)
from hanlin.agents.tools.base import AgentTool
from hanlin.errors import HanlinError
from hanlin.models.types import Message


@dataclass(slots=True)
class McpResource:
    server: str
    uri: str
    name: str
    description: str | None = None
    mime_type: str | None = None


@dataclass(slots=True)
class McpPrompt:
    server: str
    name: str
    description: str | None = None
    #: (name, description, required) per argument
    arguments: list[tuple[str, str | None, bool]] = field(default_factory=list)


class McpToolset:
    """Connections to several MCP servers; ``tools`` holds their tools as Hanlin tools.

    A server that cannot start is left out and named in ``errors`` (``strict=True`` raises
    instead). Use it as ``async with`` on the event loop that runs the agent.
    """

    def __init__(
        self,
        servers: Mapping[str, McpServerConfig | Mapping[str, Any]],
        *,
        strict: bool = False,
        max_restarts: int = 2,
    ) -> None:
        self.configs = parse_servers(servers)
        self.strict = strict
        self.connections = {
            n: McpConnection(n, c, max_restarts=max_restarts) for n, c in self.configs.items()
        }
        self.errors: dict[str, str] = {}
        self.tools: list[AgentTool] = []

    @classmethod
    def from_settings(cls, settings: Any = None, names: list[str] | None = None) -> McpToolset:
        """The servers of ``[mcpServers]`` (all enabled ones, or those named)."""
        from hanlin.agents.mcp.config import configured_servers

        servers = configured_servers(settings)
        unknown = [n for n in names or [] if n not in servers]
        if unknown:
            raise McpError(
                f"no MCP server named {', '.join(unknown)} in hanlin.toml",
                hint=f"configured: {', '.join(servers) or 'none'} — add [mcpServers.NAME]",
            )
        return cls({n: servers[n] for n in names} if names else servers)

    async def __aenter__(self) -> McpToolset:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def connect(self) -> None:
        """Start every server at once; fill ``tools`` and ``errors``."""
        conns = list(self.connections.values())
        outcomes = await asyncio.gather(*(c.start() for c in conns), return_exceptions=True)
        taken: set[str] = set()
        self.tools, self.errors = [], {}
        for conn, outcome in zip(conns, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                self.errors[conn.name] = (
                    outcome.message if isinstance(outcome, HanlinError) else str(outcome)
                )
                continue
            for t in conn.tools:
                self.tools.append(self._tool(conn, t, taken))
        if self.strict and self.errors:
            await self.aclose()
            failures = [o for o in outcomes if isinstance(o, BaseException)]
            if len(failures) == 1 and isinstance(failures[0], McpError):
                raise failures[0]
            raise McpError(
                "; ".join(self.errors.values()), hint="fix the servers named, or remove them"
            )

    @staticmethod
    def _tool(conn: McpConnection, t: mt.Tool, taken: set[str]) -> McpTool:
        description = t.description or (t.annotations.title if t.annotations else None) or ""
        return McpTool(
            name=tool_name(conn.name, t.name, taken),
            description=f"{description.strip()} (MCP server: {conn.name})".strip(),
            fn=conn.call_tool,
            args_model=AnyArgs,
            side_effects=side_effects(t.annotations),
            timeout=conn.config.timeout,
            parameters=input_schema(t.input_schema),
            server=conn.name,
            remote_name=t.name,
            connection=conn,
        )

    async def aclose(self) -> None:
        await asyncio.gather(*(c.close() for c in self.connections.values()))

    def _conn(self, server: str) -> McpConnection:
        if server not in self.connections:
            raise McpError(
                f"no MCP server named '{server}' in this toolset",
                hint=f"servers: {', '.join(self.connections) or 'none'}",
            )
        return self.connections[server]

    def _servers(self, server: str | None) -> list[McpConnection]:
        if server is not None:
            return [self._conn(server)]
        return [c for n, c in self.connections.items() if n not in self.errors]

    # -- resources and prompts ------------------------------------------------------------------
    async def list_resources(self, server: str | None = None) -> list[McpResource]:
        """Resources of one server, or of every connected server that offers any."""
        out: list[McpResource] = []
        for conn in self._servers(server):
            caps = await conn.request("initialize", server_capabilities)
            if server is None and caps.resources is None:
                continue
            page = await conn.request("resources/list", lambda c: c.list_resources())
            out.extend(
                McpResource(conn.name, r.uri, r.name, r.description, r.mime_type)
                for r in page.resources
            )
        return out

    async def read_resource(self, server: str, uri: str) -> list[ResourceContent]:
        result = await self._conn(server).request(
            f"resources/read {uri}", lambda c: c.read_resource(uri)
        )
        return resource_contents(result)

    async def list_prompts(self, server: str | None = None) -> list[McpPrompt]:
        out: list[McpPrompt] = []
        for conn in self._servers(server):
            caps = await conn.request("initialize", server_capabilities)
            if server is None and caps.prompts is None:
                continue
            page = await conn.request("prompts/list", lambda c: c.list_prompts())
            out.extend(
                McpPrompt(
                    conn.name,
                    p.name,
                    p.description,
                    [(a.name, a.description, bool(a.required)) for a in p.arguments or []],
                )
                for p in page.prompts
            )
        return out

    async def get_prompt(
        self, server: str, name: str, arguments: Mapping[str, str] | None = None
    ) -> list[Message]:
        """The prompt's messages as Hanlin messages (non-text content described in text)."""
        args = dict(arguments or {})
        result = await self._conn(server).request(
            f"prompts/get {name}", lambda c: c.get_prompt(name, args)
        )
        return [
            Message.user(block_text(m.content))
            if m.role == "user"
            else Message.assistant(block_text(m.content))
            for m in result.messages
        ]


__all__ = ["McpPrompt", "McpResource", "McpToolset"]
