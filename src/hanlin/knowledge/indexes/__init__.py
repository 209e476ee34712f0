"""Derived search indexes (ANN vectors, BM25 keywords).

They are caches of what SQLite holds: each records the last change-log sequence it applied and
is caught up — or rebuilt — from SQLite when it is stale or missing. Applying a change twice is
harmless (upserts delete before they add), so a crash between an index commit and its sidecar
write cannot duplicate anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hanlin.fileio import atomic_write_text


def read_sidecar(path: Path) -> dict[str, Any] | None:
    """The JSON state written next to an index, or None when missing or unreadable."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_sidecar(path: Path, data: dict[str, Any]) -> None:
    """Write atomically: a crash leaves either the old or the new file, never half of one."""
    atomic_write_text(path, json.dumps(data))
