"""Where Hanlin keeps its state: the app directory ``HANLIN_HOME`` (default ``~/.hanlin``)."""

from __future__ import annotations

import os
from pathlib import Path


def hanlin_home() -> Path:
    """The app directory; created on first use."""
    raw = os.environ.get("HANLIN_HOME")
    home = Path(raw).expanduser() if raw else Path.home() / ".hanlin"
    home.mkdir(parents=True, exist_ok=True)
    return home


def kb_root(home: Path | None = None) -> Path:
    """The folder that holds one sub-folder per knowledge base."""
    root = (home or hanlin_home()) / "kb"
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_dir() -> Path:
    """Machine-wide caches that can always be rebuilt (unpacked model weights):
    ``HANLIN_CACHE``, else ``$XDG_CACHE_HOME/hanlin``, else ``~/.cache/hanlin``."""
    raw = os.environ.get("HANLIN_CACHE")
    if raw:
        return Path(raw).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "hanlin"
