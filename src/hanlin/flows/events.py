"""What a workflow run streams: the run starting, each node starting, its text as a model writes
it, retries, each node finishing (with its outputs), a pause for human input, and the end.
The CLI's live view and ``--json`` read these; :func:`event_dict` makes one plain JSON."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from hanlin.flows.base import PendingInput


@dataclass(slots=True)
class RunStartedEvent:
    run_id: str
    workflow: str
    resumed: bool = False
    type: Literal["run_started"] = "run_started"


@dataclass(slots=True)
class NodeStartedEvent:
    """Attempt ``attempt`` of a node began; ``node`` is its path (``each[2].fetch``)."""

    node: str
    node_type: str
    attempt: int = 1
    type: Literal["node_started"] = "node_started"


@dataclass(slots=True)
class NodeTextEvent:
    """More text from a node that streams (an llm node as the model writes)."""

    node: str
    text: str
    type: Literal["node_text"] = "node_text"


@dataclass(slots=True)
class NodeProgressEvent:
    """A step inside a node that works in steps (an agent node's tool call and its result, a
    team's handoff to a role): ``kind`` says which (``tool_call``, ``tool_result``,
    ``handoff``), ``data`` the details as plain JSON."""

    node: str
    kind: str
    data: dict[str, Any]
    type: Literal["node_progress"] = "node_progress"


@dataclass(slots=True)
class NodeRetryEvent:
    node: str
    attempt: int
    error: str
    wait_s: float
    type: Literal["node_retry"] = "node_retry"


@dataclass(slots=True)
class NodeFinishedEvent:
    """A node is decided. ``status``: ``done``, ``failed`` (handled by its error strategy:
    ``outputs`` are the default or the error branch's), ``skipped`` (no branch reached it) or
    ``replayed`` (a recorded result of an earlier attempt of this run, not run again)."""

    node: str
    node_type: str
    status: str
    outputs: dict[str, Any]
    seconds: float = 0.0
    branch: str | None = None
    error: str | None = None
    type: Literal["node_finished"] = "node_finished"


@dataclass(slots=True)
class RunPausedEvent:
    run_id: str
    pending: PendingInput
    type: Literal["run_paused"] = "run_paused"


@dataclass(slots=True)
class RunFinishedEvent:
    """The run stopped: ``done`` (``outputs``), ``failed`` (``error``) or ``cancelled``."""

    run_id: str
    status: str
    outputs: dict[str, Any] | None = None
    error: str | None = None
    type: Literal["run_finished"] = "run_finished"


FlowEvent = (
    RunStartedEvent
    | NodeStartedEvent
    | NodeTextEvent
    | NodeProgressEvent
    | NodeRetryEvent
    | NodeFinishedEvent
    | RunPausedEvent
    | RunFinishedEvent
)


def event_dict(event: FlowEvent) -> dict[str, Any]:
    """An event as plain JSON data."""
    data: dict[str, Any] = {}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        data[f.name] = value.model_dump(by_alias=True) if hasattr(value, "model_dump") else value
    return data
