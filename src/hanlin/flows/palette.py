"""The node palette as data, for editors: every registered node type (built-in or plugin) with
its settings as form fields, and the ports (branches) and outputs of the nodes of a draft
definition, worked out node by node so a half-finished graph still shows its ports."""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from hanlin.errors import HanlinError
from hanlin.flows.base import NodeSpec
from hanlin.flows.nodes import NODES, NodeType

#: field kinds an editor draws: a text box, a number, a switch, a choice, or JSON for the rest
_SCALARS = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean"}


def _field(name: str, prop: dict[str, Any], required: bool) -> dict[str, Any]:
    """One setting as a form field; ``kind`` is ``json`` for anything that is not one scalar
    (lists, mappings, unions of several shapes)."""
    options = [p for p in prop.get("anyOf", [prop]) if p.get("type") != "null"]
    shape = options[0] if len(options) == 1 else {}
    kind = "json"
    enum = None
    if "enum" in shape:
        kind, enum = "enum", list(shape["enum"])
    elif "const" in shape:
        kind, enum = "enum", [shape["const"]]
    elif shape.get("type") in _SCALARS:
        kind = _SCALARS[shape["type"]]
    return {
        "name": name,
        "kind": kind,
        "required": required,
        "default": prop.get("default"),
        "description": prop.get("description") or "",
        "enum": enum,
    }


def config_fields(config: type[BaseModel]) -> list[dict[str, Any]]:
    """A node type's settings in declaration order, named as YAML writes them (aliases)."""
    try:
        schema = config.model_json_schema(by_alias=True)
    except Exception:  # a plugin's settings model the schema generator cannot describe
        return [
            {"name": f.alias or n, "kind": "json", "required": f.is_required(), "default": None}
            | {"description": f.description or "", "enum": None}
            for n, f in config.model_fields.items()
        ]
    required = set(schema.get("required", []))
    return [
        _field(name, prop, name in required) for name, prop in schema.get("properties", {}).items()
    ]


def _branching(node_type: NodeType) -> bool:
    return type(node_type).handles is not NodeType.handles


def node_types() -> list[dict[str, Any]]:
    """Every registered node type: ``type``, ``summary``, ``fields`` (its settings),
    ``branching`` (its edges name a branch: the ports come from :func:`node_ports`),
    ``side_effects``. A plugin that fails to load is listed with its ``error``."""
    found: list[dict[str, Any]] = []
    for name in NODES.names():
        try:
            node_type = NODES.lookup(name)
        except HanlinError as exc:  # an entry point that does not import
            found.append({"type": name, "summary": "", "fields": [], "error": exc.message})
            continue
        found.append(
            {
                "type": name,
                "summary": node_type.summary,
                "fields": config_fields(node_type.Config),
                "branching": _branching(node_type),
                "side_effects": node_type.side_effects,
            }
        )
    return found


def node_ports(data: Any) -> dict[str, dict[str, Any]]:
    """For each top-level node of a draft definition (YAML's shape) whose settings are valid:
    ``handles`` (the branches its edges name; None for one way out) and ``outputs`` (name →
    type; None when only known at run time). Nodes that do not check are left out."""
    nodes = data.get("nodes") if isinstance(data, dict) else None
    ports: dict[str, dict[str, Any]] = {}
    for raw in nodes if isinstance(nodes, list) else []:
        try:
            spec = NodeSpec.from_data(raw)
            node_type = NODES[spec.type]
            config = node_type.Config.model_validate(spec.config)
            ports[spec.id] = {
                "handles": node_type.handles(config),
                "outputs": node_type.outputs(config),
            }
        except (ValueError, ValidationError, KeyError, HanlinError):
            continue
    return ports


def submitted_ports(text: str) -> dict[str, dict[str, Any]]:
    """:func:`node_ports` of a definition a client sent as YAML; nothing for text that is not
    YAML or that uses aliases (which :func:`~hanlin.flows.catalog.parse_submitted` refuses)."""
    try:
        if any(isinstance(e, yaml.AliasEvent) for e in yaml.parse(text)):
            return {}
        return node_ports(yaml.safe_load(text))
    except (yaml.YAMLError, RecursionError):
        return {}


__all__ = ["config_fields", "node_ports", "node_types", "submitted_ports"]
