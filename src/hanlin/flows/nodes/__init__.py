"""Node types: the registry and the built-in palette (importing this registers them)."""

from __future__ import annotations

from hanlin.flows.nodes import (
    agents,
    basic,
    classify,
    control,
    documents,
    effects,
    lists,
    llm,
    teams,
)
from hanlin.flows.nodes.base import NODES, NodeContext, NodeOutput, NodeType, PauseRun, register

__all__ = [
    "NODES",
    "NodeContext",
    "NodeOutput",
    "NodeType",
    "PauseRun",
    "agents",
    "basic",
    "classify",
    "control",
    "documents",
    "effects",
    "lists",
    "llm",
    "register",
    "teams",
]
