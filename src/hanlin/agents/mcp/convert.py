"""Between MCP and Hanlin: tool names and side effects, argument checks against a tool's JSON
schema, and tool results / resource contents / prompt messages as text the model reads."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import mcp_types as mt

#: what a model sees of one tool result at most (the rest is cut with a note)
MAX_RESULT_CHARS = 50_000
_NAME_BAD = re.compile(r"[^A-Za-z0-9_-]")
_MAX_NAME = 64  # OpenAI's limit on function names


def tool_name(server: str, tool: str, taken: set[str]) -> str:
    """``<server>__<tool>``, limited to the characters and length model APIs accept, unique
    within ``taken`` (which it joins)."""
    name = _NAME_BAD.sub("_", f"{server}__{tool}")
    if len(name) > _MAX_NAME:
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = f"{name[: _MAX_NAME - 9]}_{digest}"
    base, n = name, 2
    while name in taken:
        suffix = f"_{n}"
        name = base[: _MAX_NAME - len(suffix)] + suffix
        n += 1
    taken.add(name)
    return name


def side_effects(annotations: mt.ToolAnnotations | None) -> frozenset[str]:
    """Hanlin side effects from MCP's hints, with MCP's defaults: a tool is not read-only
    unless it says so (``writes``), and reaches an open world unless it says it does not
    (``network``). Either one needs approval, so an unannotated tool does."""
    hints = annotations or mt.ToolAnnotations()
    effects = {"read_only"} if hints.read_only_hint is True else {"writes"}
    if hints.open_world_hint is not False:
        effects.add("network")
    return frozenset(effects)


def input_schema(schema: dict[str, Any] | None) -> dict[str, Any]:
    """The tool's schema as the model gets it: an object schema (never empty)."""
    out = dict(schema or {})
    out.setdefault("type", "object")
    if out.get("type") == "object":
        out.setdefault("properties", {})
    return out


def schema_errors(schema: dict[str, Any], arguments: dict[str, Any]) -> str | None:
    """Why ``arguments`` do not match ``schema`` (None when they do, or when the schema
    itself is not valid JSON Schema — the server then judges)."""
    import jsonschema

    try:
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        cls.check_schema(schema)
        errors = sorted(
            cls(schema).iter_errors(arguments), key=lambda e: [str(p) for p in e.absolute_path]
        )
    except (jsonschema.SchemaError, jsonschema.exceptions.UnknownType, TypeError, ValueError):
        return None
    if not errors:
        return None
    parts = [
        f"{'.'.join(str(p) for p in e.absolute_path) or 'arguments'}: {e.message}"
        for e in errors[:3]
    ]
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return "; ".join(parts) + more


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[truncated: showing {limit} of {len(text)} characters]"


def _resource_text(res: mt.TextResourceContents | mt.BlobResourceContents) -> str:
    if isinstance(res, mt.TextResourceContents):
        return res.text
    size = len(res.blob) * 3 // 4
    return f"[binary resource {res.uri} ({res.mime_type or 'unknown type'}, ~{size} bytes)]"


def block_text(block: mt.ContentBlock) -> str:
    """One content block as text; binary content is described, not dumped."""
    if isinstance(block, mt.TextContent):
        return block.text
    if isinstance(block, mt.ImageContent | mt.AudioContent):
        kind = "image" if isinstance(block, mt.ImageContent) else "audio"
        return f"[{kind}: {block.mime_type}, ~{len(block.data) * 3 // 4} bytes]"
    if isinstance(block, mt.EmbeddedResource):
        return _resource_text(block.resource)
    if isinstance(block, mt.ResourceLink):
        label = f" ({block.name})" if block.name else ""
        return f"[resource link: {block.uri}{label}]"
    return f"[{getattr(block, 'type', 'unknown')} content]"


def result_text(result: mt.CallToolResult, max_chars: int = MAX_RESULT_CHARS) -> str:
    """What the model reads of a tool result: the text blocks, or the structured content."""
    parts = [block_text(b) for b in result.content]
    text = "\n".join(p for p in parts if p)
    if not text and result.structured_content is not None:
        text = json.dumps(result.structured_content, ensure_ascii=False, default=str)
    if not text:
        text = "(the tool returned nothing)"
    return _clip(text, max_chars)


@dataclass(slots=True)
class ResourceContent:
    """One part of a read resource: ``text``, or ``data`` (decoded bytes) for binary."""

    uri: str
    mime_type: str | None
    text: str | None = None
    data: bytes | None = None


def resource_contents(result: mt.ReadResourceResult) -> list[ResourceContent]:
    out = []
    for c in result.contents:
        if isinstance(c, mt.TextResourceContents):
            out.append(ResourceContent(c.uri, c.mime_type, text=c.text))
        else:
            out.append(ResourceContent(c.uri, c.mime_type, data=base64.b64decode(c.blob)))
    return out


__all__ = [
    "MAX_RESULT_CHARS",
    "ResourceContent",
    "block_text",
    "input_schema",
    "resource_contents",
    "result_text",
    "schema_errors",
    "side_effects",
    "tool_name",
]
