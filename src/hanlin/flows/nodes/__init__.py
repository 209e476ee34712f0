"""Node types: the registry and the built-in palette (importing this registers them)."""

from __future__ import annotations

from hanlin.flows.nodes import basic, control, effects, llm
from hanlin.flows.nodes.base import NODES, NodeContext, NodeOutput, NodeType, PauseRun, register

__all__ = [
    "NODES",
    "NodeContext",
    "NodeOutput",
    "NodeType",
    "PauseRun",
    "basic",
    "control",
    "effects",
    "llm",
    "register",
]
