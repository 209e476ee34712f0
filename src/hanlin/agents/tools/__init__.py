"""Tools an agent can call: typed Python functions with declared side effects, and built-ins."""

from hanlin.agents.tools.base import AgentTool, SideEffect, ToolResult, tool
from hanlin.agents.tools.builtins import calculator, current_time, http_get, kb_ask, kb_search
from hanlin.agents.tools.files import workspace_tools
from hanlin.agents.tools.sandbox import SandboxLimits, python_exec
from hanlin.agents.tools.websearch import WebSearchOptions, web_search

__all__ = [
    "AgentTool",
    "SandboxLimits",
    "SideEffect",
    "ToolResult",
    "WebSearchOptions",
    "calculator",
    "current_time",
    "http_get",
    "kb_ask",
    "kb_search",
    "python_exec",
    "tool",
    "web_search",
    "workspace_tools",
]
