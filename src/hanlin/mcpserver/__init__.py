"""Hanlin as an MCP server (``hanlin mcp serve``), a surface like ``server/`` and ``cli/``:
knowledge bases, RAG prompt templates and agent tools for MCP clients, over stdio or streamable
HTTP. The MCP client agents use lives in :mod:`hanlin.agents.mcp`."""

from hanlin.mcpserver.server import HanlinMcp, build_server

__all__ = ["HanlinMcp", "build_server"]
