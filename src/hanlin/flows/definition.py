"""Workflow definitions: YAML files in ``HANLIN_HOME/workflows/`` (found by name) or anywhere
(found by path), and workflows built in Python; each checked before it runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from hanlin.config import Settings
from hanlin.errors import InvalidInputError, NotFoundError, did_you_mean
from hanlin.flows.base import WorkflowInvalidError, WorkflowSpec
from hanlin.flows.graph import Graph, check_workflow


@dataclass
class Workflow:
    """A checked workflow: its definition and the graph the engine walks."""

    spec: WorkflowSpec
    graph: Graph
    path: Path | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @classmethod
    def from_dict(
        cls, data: Any, settings: Settings | None = None, *, name: str | None = None
    ) -> Workflow:
        """Check a definition given as data (YAML's shape); raises WorkflowInvalidError."""
        shown = name or (data.get("name") if isinstance(data, dict) else None) or "workflow"
        if not isinstance(data, dict):
            raise WorkflowInvalidError(shown, [(None, "not a mapping", "start with `name:`")])
        if name and "name" not in data:
            data = {"name": name, **data}
        try:
            spec = WorkflowSpec.model_validate(data)
        except ValidationError as exc:
            problems = []
            for err in exc.errors()[:10]:
                loc = err["loc"]
                node = None
                if len(loc) >= 2 and loc[0] == "nodes" and isinstance(loc[1], int):
                    nodes = data.get("nodes") or []
                    raw = nodes[loc[1]] if loc[1] < len(nodes) else None
                    node = raw.get("id") if isinstance(raw, dict) else f"#{loc[1] + 1}"
                where = ".".join(str(p) for p in loc)
                problems.append((node, f"{where}: {err['msg']}", "see docs/workflows.md"))
            raise WorkflowInvalidError(shown, problems) from None
        return cls(spec, check_workflow(spec, spec.name, settings))

    @classmethod
    def from_yaml(
        cls, text: str, settings: Settings | None = None, *, name: str | None = None
    ) -> Workflow:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidInputError(
                f"workflow {name or ''} is not valid YAML: {exc}".replace("  ", " "),
                hint="fix the YAML syntax at the line shown",
                code="workflow_invalid",
            ) from None
        return cls.from_dict(data, settings, name=name)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.spec.to_data(), sort_keys=False, allow_unicode=True)


def workflows_dir(settings: Settings) -> Path:
    return settings.home / "workflows"


def list_workflows(settings: Settings) -> list[Path]:
    """The workflow files in ``HANLIN_HOME/workflows/``."""
    folder = workflows_dir(settings)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def find_workflow_file(ref: str, settings: Settings) -> Path:
    """A workflow's file: ``ref`` as a path if it is one, else ``workflows/<ref>.yaml``."""
    path = Path(ref).expanduser()
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    for suffix in (".yaml", ".yml"):
        candidate = workflows_dir(settings) / f"{ref}{suffix}"
        if candidate.is_file():
            return candidate
    known = [p.stem for p in list_workflows(settings)]
    raise NotFoundError(
        f"no workflow '{ref}'",
        hint=did_you_mean(ref, known)
        + f"put {ref}.yaml in {workflows_dir(settings)} or give a path to a YAML file",
        code="workflow_not_found",
        params={"workflow": ref},
    )


def load_workflow(ref: str, settings: Settings, *, check_resources: bool = True) -> Workflow:
    """Load and check a workflow by name or path. ``check_resources`` also checks that what
    it names exists (knowledge bases)."""
    path = find_workflow_file(ref, settings)
    workflow = Workflow.from_yaml(
        path.read_text("utf-8"), settings if check_resources else None, name=path.stem
    )
    workflow.path = path
    return workflow
