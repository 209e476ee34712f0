"""Agents: typed tools, the tool-calling loop with repair, limits and approvals, on the gateway.

``from hanlin.agents import Agent, tool`` — planning, memory and MCP arrive later.
"""

from hanlin.agents.events import AgentResult, FinalEvent
from hanlin.agents.loop import Agent, AgentLimits, ApprovalPolicy
from hanlin.agents.tools import AgentTool, ToolResult, tool

__all__ = [
    "Agent",
    "AgentLimits",
    "AgentResult",
    "AgentTool",
    "ApprovalPolicy",
    "FinalEvent",
    "ToolResult",
    "tool",
]
