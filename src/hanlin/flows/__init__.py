"""Workflows: typed graphs of nodes (Dify's palette) run durably — checkpointed after every
node, resumable after a crash or a pause for human input, side effects recorded so they are not
repeated. ``base.py`` holds the definition and run types, ``graph.py`` the checks, ``nodes/`` the
node registry and built-in types, ``engine.py`` the runner, ``store.py`` + ``sqlite.py`` +
``postgres.py`` the run store. See docs/workflows.md."""

from __future__ import annotations

from hanlin.flows.base import (
    EdgeSpec,
    GraphSpec,
    NodeSpec,
    PendingInput,
    RunRecord,
    StepRecord,
    WorkflowInvalidError,
    WorkflowSpec,
)
from hanlin.flows.definition import Workflow, find_workflow_file, list_workflows, load_workflow
from hanlin.flows.engine import FlowEngine
from hanlin.flows.nodes import NODES, NodeContext, NodeOutput, NodeType, register
from hanlin.flows.store import FlowStore, open_flow_store

__all__ = [
    "NODES",
    "EdgeSpec",
    "FlowEngine",
    "FlowStore",
    "GraphSpec",
    "NodeContext",
    "NodeOutput",
    "NodeSpec",
    "NodeType",
    "PendingInput",
    "RunRecord",
    "StepRecord",
    "Workflow",
    "WorkflowInvalidError",
    "WorkflowSpec",
    "find_workflow_file",
    "list_workflows",
    "load_workflow",
    "open_flow_store",
    "register",
]
