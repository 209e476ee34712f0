"""What the surfaces (the HTTP API, ``workflow:NAME`` chat models, MCP tools) offer of the
workflows in ``HANLIN_HOME/workflows/``: each by name with whether it is valid, the JSON schema of
its inputs, how a chat message or a webhook's payload becomes a run's inputs, and the text a
finished run answers with. A surface names a workflow, never a file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml

from hanlin.config import Settings
from hanlin.errors import HanlinError, InvalidInputError, NotFoundError
from hanlin.flows.base import WORKFLOW_NAME, RunRecord, WorkflowInvalidError
from hanlin.flows.definition import Workflow, list_workflows, load_workflow, workflows_dir
from hanlin.flows.nodes.basic import InputSpec, StartConfig

_JSON_TYPES = {"string", "number", "integer", "boolean", "object", "array"}


@dataclass
class WorkflowInfo:
    """One workflow file: valid (``workflow`` set) or not (``error`` and ``problems``)."""

    name: str
    description: str
    workflow: Workflow | None
    error: str | None = None
    problems: list[dict[str, Any]] | None = None

    @property
    def valid(self) -> bool:
        return self.workflow is not None

    def public(self) -> dict[str, Any]:
        """As the HTTP API lists it."""
        return {
            "name": self.name,
            "description": self.description,
            "valid": self.valid,
            "error": self.error,
            "problems": self.problems or [],
            "inputs": input_schema(self.workflow) if self.workflow else None,
        }


def catalog(settings: Settings) -> list[WorkflowInfo]:
    """Every workflow in ``HANLIN_HOME/workflows/``, checked (knowledge bases they name
    included); one that does not load is listed with why."""
    found = []
    for path in list_workflows(settings):
        try:
            wf = load_workflow(str(path), settings)
            found.append(WorkflowInfo(path.stem, wf.spec.description, wf))
        except WorkflowInvalidError as exc:
            found.append(WorkflowInfo(path.stem, "", None, exc.message, problem_dicts(exc)))
        except (HanlinError, OSError, UnicodeDecodeError) as exc:
            found.append(WorkflowInfo(path.stem, "", None, str(exc).split("\n")[0]))
    return found


def problem_dicts(exc: WorkflowInvalidError) -> list[dict[str, Any]]:
    return [{"node": node, "message": message, "fix": fix} for node, message, fix in exc.problems]


def named_workflow(name: str, settings: Settings) -> Workflow:
    """The checked workflow ``HANLIN_HOME/workflows/<name>.yaml`` — by name only, so a client
    of a server can never make it read a file it names. Raises NotFoundError or
    WorkflowInvalidError."""
    if not WORKFLOW_NAME.fullmatch(name) or name.endswith((".yaml", ".yml")):
        raise NotFoundError(
            f"no workflow '{name}'",
            hint="workflows are named by GET /v1/workflows (files in "
            f"{workflows_dir(settings)}/NAME.yaml)",
            code="workflow_not_found",
            params={"workflow": name},
        )
    return load_workflow(name, settings)


def parse_submitted(text: str, settings: Settings, *, name: str | None = None) -> Workflow:
    """Check a definition a client sent (YAML; ``name`` when it names none). YAML aliases are
    refused: a few lines of nested aliases expand into billions of values wherever the
    definition is walked."""
    try:
        aliased = any(isinstance(e, yaml.AliasEvent) for e in yaml.parse(text))
    except yaml.YAMLError:
        aliased = False  # from_yaml reports the syntax error with its line
    except RecursionError:
        raise _too_deep() from None
    if aliased:
        raise InvalidInputError(
            "the definition uses YAML aliases (*name)",
            hint="write the values out in full instead of anchors and aliases",
            code="workflow_invalid",
        )
    try:
        return Workflow.from_yaml(text, settings, name=name)
    except RecursionError:
        raise _too_deep() from None


def _too_deep() -> InvalidInputError:
    return InvalidInputError(
        "the definition is nested too deeply to read",
        hint="a workflow is a mapping of nodes and edges a few levels deep",
        code="workflow_invalid",
    )


def start_inputs(workflow: Workflow) -> dict[str, InputSpec]:
    """The inputs the workflow's start node declares, in order."""
    start = next(n for n in workflow.spec.nodes if n.type == "start")
    config = workflow.graph.configs[start.id]
    assert isinstance(config, StartConfig)
    return dict(config.inputs)


def input_schema(workflow: Workflow) -> dict[str, Any]:
    """The JSON schema of a run's inputs (an MCP tool's input schema, the HTTP API's
    ``inputs``): one property per start input, the required ones without a default."""
    properties: dict[str, Any] = {}
    required = []
    for name, spec in start_inputs(workflow).items():
        prop: dict[str, Any] = {"type": spec.type} if spec.type in _JSON_TYPES else {}
        if spec.description:
            prop["description"] = spec.description
        if spec.default is not None:
            prop["default"] = spec.default
        elif spec.required:
            required.append(name)
        properties[name] = prop
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    return schema


def inputs_from_message(workflow: Workflow, text: str) -> dict[str, Any]:
    """A chat message as a run's inputs: a JSON object whose keys are inputs fills those;
    any other text fills the first text input."""
    inputs = start_inputs(workflow)
    if text.strip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict) and data and set(data) <= set(inputs):
            return data
    for name, spec in inputs.items():
        if spec.type in ("string", "any"):
            return {name: text}
    if not inputs:
        return {}
    raise InvalidInputError(
        f"workflow '{workflow.name}' has no text input for the message",
        hint="send its inputs as a JSON object in the last user message: "
        + json.dumps({name: spec.type for name, spec in inputs.items()}),
        param="messages",
    )


def inputs_from_payload(workflow: Workflow, payload: dict[str, Any]) -> dict[str, Any]:
    """A webhook's JSON body as a run's inputs: its fields are the inputs; a workflow whose
    only input is an object (or ``any``) receives the whole body in it instead when the body's
    fields are not inputs."""
    inputs = start_inputs(workflow)
    if set(payload) <= set(inputs):
        return payload
    if len(inputs) == 1:
        name, spec = next(iter(inputs.items()))
        if spec.type in ("object", "any"):
            return {name: payload}
    return payload  # the run's start names the unknown input


def reply_text(run: RunRecord) -> str:
    """The text a finished run answers a chat with: its answer, its one text output, or its
    outputs as JSON."""
    outputs = run.outputs or {}
    answer = outputs.get("answer")
    if isinstance(answer, str):
        return answer
    values = list(outputs.values())
    if len(values) == 1 and isinstance(values[0], str):
        return values[0]
    return json.dumps(outputs, ensure_ascii=False, default=str)


__all__ = [
    "WorkflowInfo",
    "catalog",
    "input_schema",
    "inputs_from_message",
    "inputs_from_payload",
    "named_workflow",
    "parse_submitted",
    "problem_dicts",
    "reply_text",
    "start_inputs",
]
