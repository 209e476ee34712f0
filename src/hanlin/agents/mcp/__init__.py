"""Hanlin's MCP client: agents use MCP servers' tools, resources and prompts (``client``,
``toolset``), configured under ``[mcpServers.<name>]`` (``config``). Hanlin's own MCP server is
a surface: :mod:`hanlin.mcpserver`."""

from hanlin.agents.mcp.client import McpConnection, McpError, McpTool
from hanlin.agents.mcp.config import McpServerConfig, configured_servers, parse_servers
from hanlin.agents.mcp.toolset import McpPrompt, McpResource, McpToolset

__all__ = [
    "McpConnection",
    "McpError",
    "McpPrompt",
    "McpResource",
    "McpServerConfig",
    "McpTool",
    "McpToolset",
    "configured_servers",
    "parse_servers",
]
