"""Agent events as JSON: what the server's SSE stream and ``hanlin agent run --json`` emit.

Every event is a dataclass with a ``type`` tag; this turns one into plain JSON-ready data
(usage as a dict with ``total_tokens``, side effects as a sorted list) and drops what only makes
sense in-process (the approval request's decision future).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from hanlin.models.types import Usage

_IN_PROCESS_ONLY = frozenset({"decision"})


def jsonable(value: Any) -> Any:
    """Plain JSON data for a value found in an agent event."""
    if isinstance(value, Usage):
        return {
            "prompt_tokens": value.prompt_tokens,
            "completion_tokens": value.completion_tokens,
            "cached_tokens": value.cached_tokens,
            "total_tokens": value.total_tokens,
        }
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: jsonable(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.name not in _IN_PROCESS_ONLY
        }
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, frozenset | set):
        return sorted(jsonable(v) for v in value)
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def event_dict(event: Any) -> dict[str, Any]:
    """One agent event as a JSON object with its ``type`` first."""
    data = jsonable(event)
    if not isinstance(data, dict):  # not an event dataclass
        raise TypeError(f"not an agent event: {type(event).__name__}")
    kind = data.pop("type", type(event).__name__)
    return {"type": kind, **data}
