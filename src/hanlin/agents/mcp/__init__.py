"""MCP for Hanlin: use MCP servers' tools, resources and prompts from agents (``client``), and
serve Hanlin's knowledge bases, prompt templates and tools to MCP clients (``server``)."""

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
