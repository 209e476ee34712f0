"""Turn what the user typed (paths, folders, globs, URLs) into the files to ingest."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hanlin.knowledge.base import SkippedFile

#: folders never worth ingesting when walking a tree
SKIP_DIRS = {"node_modules", "__pycache__", "venv", "site-packages", "dist", "build"}
_GLOB_CHARS = set("*?[")


def classify(item: str) -> str:
    """``url``, ``glob`` or ``path``."""
    if item.startswith(("http://", "https://", "upload://")):
        return "url"  # upload:// — bytes kept in the shared database (hanlin.knowledge.uploads)
    if any(ch in item for ch in _GLOB_CHARS) and not os.path.exists(item):
        return "glob"
    return "path"


def normalize_uri(item: str) -> str:
    """Paths become absolute so a source means the same thing from any working directory."""
    kind = classify(item)
    return item if kind == "url" else os.path.abspath(os.path.expanduser(item))


@dataclass
class ScanResult:
    files: list[Path] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    ignored: int = 0  # files in walked folders whose type no loader handles


def scan(uri: str, kind: str, supported: set[str]) -> ScanResult:
    """Enumerate the files of one source. Problems are reported in ``skipped``, never raised."""
    result = ScanResult()
    if kind == "glob":
        matches = sorted(glob.glob(uri, recursive=True))
        if not matches:
            result.skipped.append(
                SkippedFile(
                    uri,
                    "the pattern matches no file",
                    "check the pattern; quote it so the shell leaves it",
                )
            )
        for match in matches:
            _add_path(Path(match), supported, result, explicit=False)
        return result
    path = Path(uri)
    if not os.path.lexists(path):
        result.skipped.append(SkippedFile(uri, "no such file or folder", "check the path"))
    else:
        _add_path(path, supported, result, explicit=True)
    return result


def _add_path(path: Path, supported: set[str], result: ScanResult, *, explicit: bool) -> None:
    if path.is_symlink() and not path.exists():
        result.skipped.append(
            SkippedFile(str(path), "broken symbolic link", "fix or remove the link")
        )
    elif path.is_dir():
        for file in _walk(path, result):
            if file.suffix.lower() in supported:
                result.files.append(file)
            else:
                result.ignored += 1
    elif path.suffix.lower() in supported:
        result.files.append(path)
    elif explicit:
        result.skipped.append(
            SkippedFile(
                str(path),
                f"unsupported file type '{path.suffix or '(none)'}'",
                f"supported: {', '.join(sorted(supported))}; convert the file or rename it",
            )
        )
    else:
        result.ignored += 1


def _walk(root: Path, result: ScanResult) -> Iterator[Path]:
    """Walk a folder, following links but reporting link loops instead of looping."""
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=None):
        real = os.path.realpath(dirpath)
        if real in seen:
            result.skipped.append(
                SkippedFile(
                    dirpath,
                    "symbolic link loop (folder already seen)",
                    "remove the link that points back up the tree",
                )
            )
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in SKIP_DIRS)
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            file = Path(dirpath) / name
            if file.is_symlink() and not file.exists():
                result.skipped.append(
                    SkippedFile(
                        str(file), "broken symbolic link or link loop", "fix or remove the link"
                    )
                )
                continue
            yield file
