"""What an agent run streams: model text, tool calls and results, approval requests, step
boundaries and the final answer. The CLI, the server and the UI all consume these.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Literal

from hanlin.models.types import Message, Usage

StopReason = Literal["answer", "max_steps", "max_seconds", "max_tokens", "max_cost", "error"]


@dataclass(slots=True)
class TextEvent:
    """More of the model's text in the current step."""

    text: str
    step: int
    type: Literal["text"] = "text"


@dataclass(slots=True)
class ToolCallEvent:
    """The model asked for a tool call; ``arguments`` is the raw text it sent."""

    id: str
    name: str
    arguments: str
    step: int
    type: Literal["tool_call"] = "tool_call"


@dataclass(slots=True)
class ToolResultEvent:
    """What a call returned (or why it failed), exactly as the model will read it."""

    id: str
    name: str
    content: str
    is_error: bool
    seconds: float
    step: int
    type: Literal["tool_result"] = "tool_result"


@dataclass(slots=True)
class ApprovalRequest:
    """A call with side effects waits for a decision from the approval policy's callback.

    ``decision`` resolves to True (run it) or False (the model is told it was not approved)
    once the policy has decided; a UI can await it to show the outcome.
    """

    id: str
    tool: str
    arguments: dict[str, Any]
    side_effects: frozenset[str]
    step: int
    decision: asyncio.Future[bool] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future(), repr=False
    )
    type: Literal["approval_request"] = "approval_request"


@dataclass(slots=True)
class StepEvent:
    """A model step finished: its number and the usage and cost of the run so far."""

    step: int
    usage: Usage
    cost_usd: float
    type: Literal["step"] = "step"


@dataclass(slots=True)
class FinalEvent:
    """The run ended. ``error`` holds the message when ``stop_reason`` is "error" or a limit
    (which limit, and where it hit)."""

    text: str
    steps: int
    usage: Usage
    cost_usd: float
    stop_reason: StopReason
    error: str | None = None
    type: Literal["final"] = "final"


SubtaskStatus = Literal["pending", "running", "done", "failed", "skipped"]


@dataclass(slots=True)
class PlanEvent:
    """The planner made (``revision`` 0) or revised a plan; ``subtasks`` is the whole plan.

    Each subtask is a dict with ``id``, ``title``, ``description``, ``depends_on`` (ids),
    ``status`` (pending / running / done / failed / skipped) and ``result`` (text or None).
    ``reason`` says why a revision was made (the failure that caused it), or that the model's
    plan was unusable and a single-subtask plan stands in for it.
    """

    subtasks: list[dict[str, Any]]
    revision: int
    reason: str | None = None
    type: Literal["plan"] = "plan"


@dataclass(slots=True)
class SubtaskEvent:
    """A subtask started, finished or failed (or was skipped: a dependency failed).

    The inner agent's events for a subtask arrive between its ``running`` and its ``done`` /
    ``failed`` event; ``result`` holds the subtask's answer, ``error`` why it failed.
    """

    id: str
    title: str
    status: SubtaskStatus
    result: str | None = None
    error: str | None = None
    type: Literal["subtask"] = "subtask"


@dataclass(slots=True)
class MemoryEvent:
    """Memory changed what the model sees: older turns were ``summarized`` (``summary`` is the
    new summary; tokens before and after), or long-term facts were ``recalled`` into the first
    turn (``summary`` is the note the model gets)."""

    action: Literal["summarized", "recalled"]
    summary: str
    tokens_before: int = 0
    tokens_after: int = 0
    type: Literal["memory"] = "memory"


@dataclass(slots=True)
class NoticeEvent:
    """Something the user should know about the run before its answer, said once: ``code``
    is stable (``base_model``: the model cannot follow instructions or choose tools) so a UI
    can show it in its own language; ``model`` is the model it concerns."""

    code: str
    text: str
    model: str | None = None
    type: Literal["notice"] = "notice"


AgentEvent = (
    NoticeEvent
    | TextEvent
    | ToolCallEvent
    | ToolResultEvent
    | ApprovalRequest
    | StepEvent
    | PlanEvent
    | SubtaskEvent
    | MemoryEvent
    | FinalEvent
)


@dataclass(slots=True)
class AgentResult:
    """A finished run: the final event's fields plus the whole transcript and every event."""

    text: str
    steps: int
    usage: Usage
    cost_usd: float
    stop_reason: StopReason
    error: str | None
    messages: list[Message]
    events: list[AgentEvent]

    @classmethod
    def of(cls, events: list[AgentEvent], messages: list[Message]) -> AgentResult:
        """The result of a finished run: its events (the last one a FinalEvent) and transcript."""
        final = events[-1]
        if not isinstance(final, FinalEvent):
            raise TypeError(f"a run ends with a FinalEvent, not {type(final).__name__}")
        return cls(
            final.text,
            final.steps,
            final.usage,
            final.cost_usd,
            final.stop_reason,
            final.error,
            messages,
            events,
        )

    @property
    def tool_results(self) -> list[ToolResultEvent]:
        return [e for e in self.events if isinstance(e, ToolResultEvent)]
