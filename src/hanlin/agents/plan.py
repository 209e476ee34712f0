"""Plans for planner mode: the JSON schema the model fills, the bundled prompts, parsing and
checking a plan (ids, dependencies, cycles), and the bookkeeping of subtasks as they run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hanlin.agents.events import SubtaskStatus
from hanlin.agents.repair import repair_json
from hanlin.prompts.builtin import bundled_text

#: what a subtask's answer starts with when the inner agent could not do it
FAILED_MARK = "FAILED:"

PLAN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "subtasks": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "title": {"type": "string"},
                    "description": {"type": "string"},
                    "depends_on": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["id", "title", "description", "depends_on"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["subtasks"],
    "additionalProperties": False,
}

#: the planner's bundled prompts (the registry's ``agent.planner.*``, version 1); a run reads
#: them from the registry at the agent's label (:mod:`hanlin.agents.prompts`)
PLAN_PROMPT = bundled_text("agent.planner.plan")
REPLAN_PROMPT = bundled_text("agent.planner.replan")
SUBTASK_PROMPT = bundled_text("agent.planner.subtask")
REPORT_PROMPT = bundled_text("agent.planner.report")


class PlanItem(BaseModel):
    """One subtask as the model writes it."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=40)
    title: str = Field(min_length=1, max_length=500)
    description: str = ""
    depends_on: list[str] = Field(default_factory=list)


class PlanModel(BaseModel):
    model_config = ConfigDict(extra="ignore")

    subtasks: list[PlanItem]


@dataclass(slots=True)
class Subtask:
    """A subtask with its progress."""

    id: str
    title: str
    description: str = ""
    depends_on: list[str] = field(default_factory=list)
    status: SubtaskStatus = "pending"
    result: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "depends_on": list(self.depends_on),
            "status": self.status,
            "result": self.result,
        }


class PlanError(ValueError):
    """The model's plan is unusable; the message is what the model is told to fix."""


def parse_plan(text: str, *, done: Sequence[str] = (), max_subtasks: int = 8) -> list[Subtask]:
    """Subtasks from the model's JSON; raises :class:`PlanError` saying what is wrong.

    Checks: JSON (repaired leniently), the schema, 1..``max_subtasks`` subtasks, unique ids not
    among ``done``, dependencies on known ids only, no cycles.
    """
    raw = text.strip()
    try:
        data = json.loads(raw)
    except ValueError:
        try:
            data = repair_json(raw)
        except ValueError as exc:
            raise PlanError(f"the reply is not JSON ({exc})") from None
    if isinstance(data, list):
        data = {"subtasks": data}
    try:
        plan = PlanModel.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "the reply"
        raise PlanError(f"{where}: {first['msg']}") from None
    items = plan.subtasks
    if not items:
        raise PlanError("the plan has no subtasks")
    if len(items) > max_subtasks:
        raise PlanError(f"the plan has {len(items)} subtasks; the most allowed is {max_subtasks}")
    ids = [i.id for i in items]
    dupes = sorted({i for i in ids if ids.count(i) > 1} | (set(ids) & set(done)))
    if dupes:
        raise PlanError(f"subtask ids must be unique and new; repeated: {', '.join(dupes)}")
    known = set(ids) | set(done)
    for item in items:
        missing = [d for d in item.depends_on if d not in known]
        if missing:
            raise PlanError(f"subtask {item.id} depends on unknown ids: {', '.join(missing)}")
    order, seen = {i.id: i for i in items}, set(done)
    while len(seen) < len(known):
        ready = [i for i in order if i not in seen and set(order[i].depends_on) <= seen]
        if not ready:
            raise PlanError("the dependencies form a cycle")
        seen.update(ready)
    return [Subtask(i.id, i.title, i.description, list(i.depends_on)) for i in items]


def next_ready(subtasks: list[Subtask]) -> Subtask | None:
    status = {s.id: s.status for s in subtasks}
    for s in subtasks:
        if s.status == "pending" and all(status.get(d) == "done" for d in s.depends_on):
            return s
    return None


def skip_dependents(subtasks: list[Subtask]) -> None:
    """Mark pending subtasks that can no longer run (a dependency failed or was skipped)."""
    changed = True
    while changed:
        changed = False
        status = {s.id: s.status for s in subtasks}
        for s in subtasks:
            if s.status == "pending" and any(
                status.get(d) in ("failed", "skipped") for d in s.depends_on
            ):
                s.status, s.error = "skipped", "a subtask it depends on failed"
                changed = True


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(s: Subtask) -> str:
    head = f"Subtask {s.id} — {s.title} [{s.status}]"
    if s.status == "done":
        return f"{head}\n{clip(s.result or '', 4000)}"
    return f"{head}\n{s.error or 'not done'}"


def fallback_report(goal: str, subtasks: list[Subtask]) -> str:
    """The report without a model (when the run stopped at a limit or on an error)."""
    if not subtasks:
        return ""
    lines = [f"Stopped before finishing: {goal}", ""]
    lines += [describe(s) for s in subtasks]
    return "\n".join(lines)


__all__ = [
    "FAILED_MARK",
    "PLAN_SCHEMA",
    "PlanError",
    "Subtask",
    "describe",
    "fallback_report",
    "next_ready",
    "parse_plan",
    "skip_dependents",
]
