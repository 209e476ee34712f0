"""A unified diff between two versions of a prompt: the text, then the variables and the model
config as lines (``name: type, required — description``), so every change a version can carry
shows up in one diff a reviewer reads top to bottom."""

from __future__ import annotations

import difflib
import json

from hanlin.prompts.base import PromptVersion


def lines(version: PromptVersion) -> list[str]:
    """A version as diffable lines: text, ``# variables``, ``# config``."""
    out = version.text.splitlines()
    out.append("# variables")
    for v in sorted(version.variables, key=lambda v: v.name):
        line = f"{v.name}: {v.type}, " + ("required" if v.required else "optional")
        if v.default is not None:
            line += f", default {json.dumps(v.default, ensure_ascii=False)}"
        if v.description:
            line += f" — {v.description}"
        out.append(line)
    out.append("# config")
    if version.config is not None:
        for key, value in version.config.model_dump(exclude_none=True).items():
            out.append(f"{key}: {value}")
    return out


def diff_versions(old: PromptVersion, new: PromptVersion) -> str:
    """The unified diff from ``old`` to ``new`` (empty when they hold the same content)."""
    return "\n".join(
        difflib.unified_diff(
            lines(old),
            lines(new),
            fromfile=f"{old.name}@{old.version}",
            tofile=f"{new.name}@{new.version}",
            lineterm="",
        )
    )
