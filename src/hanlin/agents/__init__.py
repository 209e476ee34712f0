"""Agents: typed tools, the tool-calling loop with repair, limits and approvals, on the gateway.

``from hanlin.agents import Agent, tool``; planner mode, memory, YAML definitions (``open_agent``)
and MCP (``hanlin.agents.mcp``).
"""

from hanlin.agents.events import AgentResult, FinalEvent
from hanlin.agents.loop import Agent, AgentLimits, ApprovalPolicy
from hanlin.agents.memory import AgentChat, ConversationMemory, LongTermMemory
from hanlin.agents.planner import PlannerAgent
from hanlin.agents.spec import (
    AgentSpec,
    AgentSpecError,
    list_agent_specs,
    load_agent_spec,
    open_agent,
)
from hanlin.agents.tools import AgentTool, ToolResult, tool

__all__ = [
    "Agent",
    "AgentChat",
    "AgentLimits",
    "AgentResult",
    "AgentSpec",
    "AgentSpecError",
    "AgentTool",
    "ApprovalPolicy",
    "ConversationMemory",
    "FinalEvent",
    "LongTermMemory",
    "PlannerAgent",
    "ToolResult",
    "list_agent_specs",
    "load_agent_spec",
    "open_agent",
    "tool",
]
