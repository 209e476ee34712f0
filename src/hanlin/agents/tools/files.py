"""``read_file`` / ``write_file`` / ``list_dir`` confined to one workspace folder.

Every path the model gives is taken relative to the workspace, resolved to its real location
(symlinks followed) and refused unless that location is inside the workspace, so ``..``,
absolute paths and symlinks pointing outside cannot escape. The check happens just before the
file is opened: a process that swaps a directory for a symlink in between (a race) is outside
what this protects against — the workspace should not be shared with untrusted writers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from hanlin.agents.tools.base import AgentTool, ToolResult, tool

MAX_LIST_ENTRIES = 1000


class WorkspaceError(ValueError):
    """A path that leaves the workspace or cannot be used."""


def resolve_inside(root: Path, path: str) -> Path:
    """The real path of ``path`` under ``root``; raises :class:`WorkspaceError` if it escapes."""
    if not path or "\x00" in path:
        raise WorkspaceError("give a path relative to the workspace, e.g. 'notes/todo.md'")
    if Path(path).is_absolute() or path.startswith("~"):
        raise WorkspaceError(
            f"{path!r} is absolute: give a path relative to the workspace, e.g. 'notes/todo.md'"
        )
    real = (root / path).resolve()
    if real != root and not real.is_relative_to(root):
        raise WorkspaceError(f"{path!r} is outside the workspace; only files inside it are allowed")
    return real


def workspace_tools(root: Path | str, *, max_bytes: int = 1 << 20) -> list[AgentTool]:
    """``read_file``, ``write_file`` and ``list_dir`` confined to ``root`` (created if missing).

    ``max_bytes`` caps what one read returns (the rest is cut with a note) and what one write
    may store (larger writes are refused).
    """
    base = Path(root).expanduser()
    base.mkdir(parents=True, exist_ok=True)
    base = base.resolve()

    @tool(name="read_file", timeout=30.0)
    def read_file(path: str) -> ToolResult:
        """Read a text file from the workspace.

        Args:
            path: the file's path relative to the workspace
        """
        try:
            real = resolve_inside(base, path)
        except WorkspaceError as exc:
            return ToolResult(str(exc), True)
        if not real.is_file():
            what = "a folder" if real.is_dir() else "not found"
            return ToolResult(f"cannot read {path!r}: {what} (use list_dir to see the files)", True)
        size = real.stat().st_size
        with real.open("rb") as fh:
            raw = fh.read(max_bytes)
        text = raw.decode("utf-8", errors="replace")
        if size > max_bytes:
            text += f"\n[truncated: showing the first {max_bytes} of {size} bytes]"
        return ToolResult(text, False, {"path": path, "size": size})

    @tool(name="write_file", side_effects=("writes",), timeout=30.0)
    def write_file(path: str, content: str) -> ToolResult:
        """Write a text file in the workspace, replacing it if it exists (folders are created).

        Args:
            path: the file's path relative to the workspace
            content: the full text to write (UTF-8)
        """
        try:
            real = resolve_inside(base, path)
        except WorkspaceError as exc:
            return ToolResult(str(exc), True)
        data = content.encode("utf-8")
        if len(data) > max_bytes:
            return ToolResult(
                f"refused to write {path!r}: {len(data)} bytes is over the limit of {max_bytes}",
                True,
            )
        if real.is_dir():
            return ToolResult(f"cannot write {path!r}: it is a folder", True)
        real.parent.mkdir(parents=True, exist_ok=True)
        # O_NOFOLLOW: a symlink planted at the last component after the check is not followed
        fd = os.open(real, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        rel = real.relative_to(base).as_posix()
        return ToolResult(f"wrote {len(data)} bytes to {rel}", False, {"path": rel})

    @tool(name="list_dir", timeout=30.0)
    def list_dir(path: str = ".") -> ToolResult:
        """List a folder in the workspace: names, kinds (file/dir) and sizes.

        Args:
            path: the folder's path relative to the workspace ("." is the workspace itself)
        """
        try:
            real = resolve_inside(base, path)
        except WorkspaceError as exc:
            return ToolResult(str(exc), True)
        if not real.is_dir():
            return ToolResult(f"cannot list {path!r}: not a folder", True)
        entries: list[dict[str, object]] = []
        children = sorted(real.iterdir(), key=lambda p: p.name)
        for child in children[:MAX_LIST_ENTRIES]:
            if child.is_symlink():
                kind = "link"
            elif child.is_dir():
                kind = "dir"
            else:
                kind = "file"
            item: dict[str, object] = {"name": child.name, "type": kind}
            if kind == "file":
                item["size"] = child.stat().st_size
            entries.append(item)
        data: dict[str, object] = {"path": path, "entries": entries}
        if len(children) > MAX_LIST_ENTRIES:
            data["note"] = f"showing {MAX_LIST_ENTRIES} of {len(children)} entries"
        return ToolResult(json.dumps(data, ensure_ascii=False), False, data)

    return [read_file, write_file, list_dir]


__all__ = ["WorkspaceError", "resolve_inside", "workspace_tools"]
