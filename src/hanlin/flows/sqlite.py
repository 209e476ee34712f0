"""The SQLite run store: ``HANLIN_HOME/workflows.sqlite`` in WAL mode with ``synchronous=FULL``
(a checkpoint survives a power cut; ``workflows.sqlite_synchronous = "normal"``: it survives the
process being killed), one ``BEGIN IMMEDIATE`` transaction per change, the schema as named
migrations (:mod:`hanlin.sqlite_migrations`)."""

from __future__ import annotations

from pathlib import Path

from hanlin.flows.sql import SCHEDULE_FIRES, SCHEMA, STARTED_BY, SqlFlowStore
from hanlin.sqlite_migrations import SqliteFile

MIGRATIONS: list[tuple[str, list[str]]] = [
    ("0001_initial", SCHEMA),
    ("0002_started_by", STARTED_BY),
    ("0003_schedule_fires", SCHEDULE_FIRES),
]


class SqliteFlowStore(SqliteFile, SqlFlowStore):
    """Runs in one SQLite file. Cheap to construct; the file opens on first use. Safe to
    share between threads (one connection behind a lock) and between processes."""

    migrations = MIGRATIONS
    synchronous = "FULL"  # a checkpoint survives a power cut

    def __init__(self, path: Path, *, synchronous: str = "full") -> None:
        super().__init__(path)
        self.synchronous = synchronous.upper()
