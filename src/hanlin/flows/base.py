"""What a workflow is made of (nodes, edges, retry and error policies, as written in YAML or
Python) and what a run leaves in the store (its record, each step, a pending human-input form).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hanlin.errors import HanlinError, InvalidInputError, NotFoundError

_FORBID = ConfigDict(extra="forbid")
#: node ids are Jinja names, so ``{{retrieve.results}}`` reads a node's output
NODE_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
WORKFLOW_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
#: the fields every node has; the other keys of a node are its type's config
COMMON_FIELDS = frozenset(
    {"id", "type", "title", "timeout_s", "retry", "on_error", "default", "config"}
)

RunStatus = Literal["pending", "running", "paused", "done", "failed", "cancelled"]
#: a run in one of these is finished: resume refuses it
FINISHED: frozenset[str] = frozenset({"done", "cancelled"})
StepStatus = Literal["done", "failed", "skipped", "replayed"]


class RetryPolicy(BaseModel):
    """Attempts of a failing node: ``backoff_s`` doubles after each failure, up to
    ``max_backoff_s``."""

    model_config = _FORBID

    max_attempts: int = Field(default=1, ge=1, le=20)
    backoff_s: float = Field(default=1.0, ge=0.0, le=600.0)
    max_backoff_s: float = Field(default=30.0, ge=0.0, le=3600.0)

    def wait(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based)."""
        return float(min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s))


class NodeSpec(BaseModel):
    """One node: its id, type, policies, and its type's settings (``config``).

    In YAML the type's settings sit beside ``id`` and ``type``; they are gathered into
    ``config`` and checked against the type's own model when the workflow is validated.
    """

    model_config = _FORBID

    id: str
    type: str
    title: str | None = None
    #: seconds one attempt may take (None: no limit)
    timeout_s: float | None = Field(default=None, gt=0)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    #: after the last attempt fails: ``fail`` the run, use ``default`` as the node's outputs,
    #: or follow the node's ``error`` edge (``node.error -> handler``)
    on_error: Literal["fail", "default", "branch"] = "fail"
    default: dict[str, Any] | None = None
    config: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_data(cls, data: Any) -> NodeSpec:
        """A node from its YAML form (type settings beside the common fields)."""
        if not isinstance(data, dict):
            raise ValueError("a node is a mapping with at least `id` and `type`")
        common = {k: v for k, v in data.items() if k in COMMON_FIELDS}
        extra = {k: v for k, v in data.items() if k not in COMMON_FIELDS}
        config = dict(common.pop("config", None) or {})
        config.update(extra)
        return cls.model_validate({**common, "config": config})

    def to_data(self) -> dict[str, Any]:
        """The YAML form: common fields that differ from their defaults, then the config."""
        data = self.model_dump(exclude_defaults=True, exclude={"config"})
        data.update(self.config)
        return data


class EdgeSpec(BaseModel):
    """``source`` → ``target``; ``handle`` names the branch taken (an if/else case, ``else``,
    ``error``), None for a node's single way out."""

    model_config = _FORBID

    source: str
    target: str
    handle: str | None = None

    @classmethod
    def parse(cls, value: Any) -> EdgeSpec:
        """``"a -> b"``, ``"check.yes -> b"`` or ``{source, target, handle}``."""
        if isinstance(value, EdgeSpec):
            return value
        if isinstance(value, dict):
            return cls.model_validate(value)
        if not isinstance(value, str) or "->" not in value:
            raise ValueError(
                f"edge {value!r}: write 'source -> target' or 'source.branch -> target'"
            )
        left, _, right = (part.strip() for part in value.partition("->"))
        source, _, handle = left.partition(".")
        return cls(source=source, target=right, handle=handle or None)

    def __str__(self) -> str:
        left = f"{self.source}.{self.handle}" if self.handle else self.source
        return f"{left} -> {self.target}"


class GraphSpec(BaseModel):
    """Nodes and edges: a workflow, or the body of an iteration or a loop. Without ``edges``
    the nodes run in the order listed."""

    model_config = _FORBID

    nodes: list[NodeSpec]
    edges: list[EdgeSpec] | None = None

    @field_validator("nodes", mode="before")
    @classmethod
    def _nodes(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [v if isinstance(v, NodeSpec) else NodeSpec.from_data(v) for v in value]
        return value

    @field_validator("edges", mode="before")
    @classmethod
    def _edges(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [EdgeSpec.parse(v) for v in value]
        return value

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"nodes": [n.to_data() for n in self.nodes]}
        if self.edges is not None:
            data["edges"] = [str(e) for e in self.edges]
        return data


class TriggerSpec(BaseModel):
    """A schedule that starts the workflow: a cron expression (five fields, or six with
    seconds first) read in ``timezone``, and the inputs each run gets. ``catch_up``: after a
    downtime, ``latest`` runs the most recent missed fire once, ``skip`` runs none. ``id``
    names the trigger (default: its schedule); its last fire is kept under it."""

    model_config = _FORBID

    id: str | None = None
    schedule: str
    timezone: str = "UTC"
    inputs: dict[str, Any] = Field(default_factory=dict)
    catch_up: Literal["latest", "skip"] = "latest"

    @property
    def key(self) -> str:
        return self.id or self.schedule


class WorkflowSpec(GraphSpec):
    """A whole workflow: a named graph with one ``start`` node, and the schedules that start
    it (``triggers``)."""

    name: str
    description: str = ""
    triggers: list[TriggerSpec] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not WORKFLOW_NAME.fullmatch(value):
            raise ValueError(
                "a workflow name is letters, digits, '.', '_' and '-', starting with a letter "
                "or digit"
            )
        return value

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name}
        if self.description:
            data["description"] = self.description
        if self.triggers:
            data["triggers"] = [t.model_dump(exclude_defaults=True) for t in self.triggers]
        return {**data, **super().to_data()}


class PendingInput(BaseModel):
    """A human-input node waiting for an answer: where, what to show, and the JSON schema
    the answer must satisfy."""

    node: str  # the node's path (``review``, ``each[2].review``)
    prompt: str
    kind: str
    schema_: dict[str, Any] = Field(alias="schema")
    value: Any = None  # what an ``edit`` form starts from
    options: list[Any] | None = None

    model_config = ConfigDict(populate_by_name=True)


class RunRecord(BaseModel):
    """A run as stored. ``state`` maps each top-level node decided so far to its
    ``{status, outputs, branch, error}``; it is checkpointed after every node."""

    id: str
    workflow: str
    definition: dict[str, Any]
    inputs: dict[str, Any]
    status: RunStatus
    state: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, Any] | None = None
    error: str | None = None
    pending: PendingInput | None = None
    owner: str | None = None
    parent: str | None = None
    #: the API key id of whoever started the run (None: the local user — the CLI, a keyless
    #: server); a key sees only its own runs unless it is an admin
    started_by: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    steps: int = 0


class StepRecord(BaseModel):
    """One finished node (top-level or inside a body), in the order they finished."""

    seq: int = 0
    node: str
    type: str
    status: StepStatus
    outputs: dict[str, Any] = Field(default_factory=dict)
    branch: str | None = None
    error: str | None = None
    attempts: int = 1
    started_at: float = 0.0
    finished_at: float = 0.0


class ScheduleFire(BaseModel):
    """A schedule trigger's fire as stored: when it was due, what became of it (``fired``: a
    run started; ``armed``: the trigger was first seen, nothing ran; ``skipped``: missed and
    not caught up), its run, and when it was recorded."""

    workflow: str
    trigger: str
    scheduled_at: float
    outcome: str
    run_id: str | None = None
    fired_at: float = 0.0


class WorkflowInvalidError(InvalidInputError):
    """A workflow failed validation; ``problems`` lists each ``(node, message, fix)``."""

    code = "workflow_invalid"

    def __init__(self, workflow: str, problems: list[tuple[str | None, str, str]]) -> None:
        lines = [
            f"  - {'node ' + repr(node) + ': ' if node else ''}{message} (fix: {fix})"
            for node, message, fix in problems
        ]
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(
            f"workflow '{workflow}' is invalid ({count}):\n" + "\n".join(lines),
            hint=problems[0][2] if problems else None,
            params={"workflow": workflow, "problems": [list(p) for p in problems]},
        )
        self.problems = problems


class FormAnswerError(InvalidInputError):
    """An answer to a human-input form does not satisfy the form's schema; ``param`` names the
    field at fault. The run stays paused, its form unanswered."""

    code = "workflow_bad_answer"


class RunFailedError(HanlinError):
    """A run a caller waited for ended failed or cancelled (a surface that answers with the
    run's result, such as a ``workflow:`` chat model, raises it)."""

    code = "workflow_run_failed"


class RunInterruptedError(HanlinError):
    """The run was cancelled, or another process took it over, while this one ran it."""

    code = "workflow_run_interrupted"


def run_not_found(run_id: str) -> NotFoundError:
    """The error for a run that does not exist — or that the caller may not see, which is
    answered the same way."""
    return NotFoundError(
        f"no workflow run '{run_id}'",
        hint="list runs with `hanlin workflow runs` (or GET /v1/workflows/runs)",
        code="workflow_run_not_found",
        params={"run": run_id},
    )


def check_node_id(value: str) -> str:
    if not NODE_ID.fullmatch(value):
        raise InvalidInputError(
            f"invalid node id {value!r}",
            hint="a node id is letters, digits and '_', starting with a letter or '_' "
            "(it is the name templates read the node's outputs by: {{id.field}})",
        )
    return value
