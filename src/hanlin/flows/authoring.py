"""Saving a workflow under a name (what the web editor's Save does): the definition is checked
like any other, then written to ``HANLIN_HOME/workflows/NAME.yaml``; where its nodes sit on the
editor's canvas goes beside it in ``NAME.layout.json``, so the YAML the engine runs holds only
the workflow. A definition equal to the file's is not written again: its comments and layout of
text stay as they were."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hanlin.config import Settings
from hanlin.errors import InvalidInputError, NotFoundError
from hanlin.fileio import atomic_write_text
from hanlin.flows.base import NODE_ID, WORKFLOW_NAME, WorkflowSpec
from hanlin.flows.catalog import parse_submitted
from hanlin.flows.definition import Workflow, workflows_dir

#: names the HTTP API's own paths take under /v1/workflows
RESERVED = frozenset({"runs", "nodes", "validate"})
LAYOUT_SUFFIX = ".layout.json"
_LIMIT = 1_000_000.0  # canvas coordinates, in pixels either way


class Point(BaseModel):
    model_config = ConfigDict(extra="forbid")

    x: float
    y: float

    @field_validator("x", "y")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value) or abs(value) > _LIMIT:
            raise ValueError(f"a coordinate is a finite number within ±{_LIMIT:g}")
        return round(value, 1)


class Layout(BaseModel):
    """Where the editor drew each node (node id → top-left corner, canvas pixels)."""

    model_config = ConfigDict(extra="forbid")

    nodes: dict[str, Point] = Field(default_factory=dict)


@dataclass
class Saved:
    """What a save did: ``created`` (no file before), ``changed`` (the definition differs
    from the file's; False: the file was left as it was)."""

    workflow: Workflow
    created: bool
    changed: bool


def check_name(name: str) -> str:
    """A workflow name that can be a file name in ``workflows/`` and nothing else: no path,
    no hidden file, none of the API's own paths. Raises InvalidInputError."""
    if (
        not WORKFLOW_NAME.fullmatch(name)
        or name.endswith((".yaml", ".yml", ".json"))
        or name in RESERVED
    ):
        raise InvalidInputError(
            f"'{name}' cannot be a workflow's name",
            hint="use letters, digits, '.', '_' and '-', starting with a letter or digit "
            f"(not {', '.join(sorted(RESERVED))}, no '/' and no file extension)",
            code="workflow_bad_name",
            param="name",
            params={"workflow": name},
        )
    return name


def _file(name: str, settings: Settings) -> Path | None:
    for suffix in (".yaml", ".yml"):
        path = workflows_dir(settings) / f"{name}{suffix}"
        if path.is_file():
            return path
    return None


def _same(path: Path, spec: WorkflowSpec) -> bool:
    """Whether the file at ``path`` already holds ``spec`` (compared as definitions)."""
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
        if isinstance(data, dict) and "name" not in data:
            data = {"name": path.stem, **data}
        return WorkflowSpec.model_validate(data).to_data() == spec.to_data()
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValidationError):
        return False


def _checked(name: str, settings: Settings, definition: Any, text: str | None) -> Workflow:
    if text is not None:
        workflow = parse_submitted(text, settings, name=name)
    else:
        if not isinstance(definition, dict):
            raise InvalidInputError(
                "a definition is a mapping with `nodes` (and `edges`)",
                hint="send {'definition': {'nodes': [...], 'edges': [...]}}",
                code="workflow_invalid",
                param="definition",
            )
        workflow = Workflow.from_dict({"name": name, **definition}, settings)
    if workflow.name != name:
        raise InvalidInputError(
            f"the definition is named '{workflow.name}', not '{name}'",
            hint=f"set `name: {name}` (or leave it out) to save it as {name}",
            code="workflow_name_mismatch",
            param="name",
            params={"workflow": name},
        )
    return workflow


def save_workflow(
    name: str,
    settings: Settings,
    *,
    definition: dict[str, Any] | None = None,
    text: str | None = None,
    layout: Layout | None = None,
) -> Saved:
    """Check and save a workflow as ``workflows/NAME.yaml`` — from its ``definition`` (data,
    written as YAML) or its YAML ``text`` (written as given). Nothing is written when the name
    or the definition is refused (InvalidInputError, WorkflowInvalidError). ``layout`` replaces
    the canvas positions, keeping only those of nodes the workflow has."""
    check_name(name)
    workflow = _checked(name, settings, definition, text)
    folder = workflows_dir(settings)
    existing = _file(name, settings)
    changed = existing is None or not _same(existing, workflow.spec)
    if changed:
        folder.mkdir(parents=True, exist_ok=True)
        target = existing or folder / f"{name}.yaml"
        atomic_write_text(target, text if text is not None else workflow.to_yaml())
        workflow.path = target
    else:
        workflow.path = existing
    if layout is not None:
        ids = {n.id for n in workflow.spec.nodes}
        kept = {k: v for k, v in layout.nodes.items() if k in ids and NODE_ID.fullmatch(k)}
        data = Layout(nodes=kept).model_dump()
        atomic_write_text(folder / f"{name}{LAYOUT_SUFFIX}", json.dumps(data, indent=1) + "\n")
    return Saved(workflow, created=existing is None, changed=changed)


def read_draft(name: str, settings: Settings) -> dict[str, Any]:
    """The definition in ``workflows/NAME.yaml`` as written, valid or not — what an editor
    opens to fix a workflow that does not check. Raises NotFoundError, InvalidInputError (not
    YAML, or not a mapping)."""
    path = _file(name, settings) if WORKFLOW_NAME.fullmatch(name) else None
    if path is None:
        raise NotFoundError(
            f"no workflow '{name}'",
            hint="workflows are named by GET /v1/workflows",
            code="workflow_not_found",
            params={"workflow": name},
        )
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InvalidInputError(
            f"workflow {name} is not valid YAML: {exc}",
            hint=f"fix the YAML syntax at the line shown in {path}",
            code="workflow_invalid",
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("nodes", []), list):
        raise InvalidInputError(
            f"workflow {name} is not a mapping with a list of `nodes`",
            hint=f"fix {path}: start with `name:` and `nodes:`",
            code="workflow_invalid",
        )
    return {"name": name, **data}


def read_layout(name: str, settings: Settings) -> dict[str, Any]:
    """The saved canvas positions of a workflow's nodes (``{"nodes": {}}`` when none, or when
    the sidecar file is unreadable: positions are only a convenience)."""
    path = workflows_dir(settings) / f"{name}{LAYOUT_SUFFIX}"
    try:
        return Layout.model_validate_json(path.read_bytes()).model_dump()
    except (OSError, ValidationError, ValueError):
        return {"nodes": {}}


__all__ = [
    "RESERVED",
    "Layout",
    "Point",
    "Saved",
    "check_name",
    "read_draft",
    "read_layout",
    "save_workflow",
]
