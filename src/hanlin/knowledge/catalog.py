"""Which knowledge bases exist and which store each uses.

Embedded (no ``database_url``): each knowledge base is a folder ``HANLIN_HOME/kb/<name>/`` whose
``kb.json`` names its store, written last when the knowledge base is created. With
``database_url``: the ``kbs`` table of the shared database, so every replica and worker sees
the same knowledge bases; a row's ``store`` is set last, the same way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Protocol

from hanlin.config import Settings
from hanlin.errors import StoreCorruptError

_MANIFEST = "kb.json"  # {"store": "<name in the hanlin.stores registry>"}


class Catalog(Protocol):
    def store_of(self, name: str) -> str | None:
        """The store the knowledge base was created with; None when there is no such one."""
        ...

    def names(self) -> list[str]: ...
    def record(self, name: str, store: str) -> None:
        """Mark a knowledge base complete (the last step of creating it)."""
        ...

    def forget(self, name: str) -> None:
        """Remove the entry (the store has deleted its data first)."""
        ...


class FolderCatalog:
    """Knowledge bases as folders under ``HANLIN_HOME/kb``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def store_of(self, name: str) -> str | None:
        path = self.root / name
        try:
            return str(json.loads((path / _MANIFEST).read_text(encoding="utf-8"))["store"])
        except FileNotFoundError:
            # a folder from before stores were recorded
            return "sqlite" if (path / "kb.sqlite").exists() else None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreCorruptError(
                f"cannot read {path / _MANIFEST}: {exc}",
                hint='restore it: it holds {"store": "<name>"}, the store the knowledge base uses',
            ) from exc

    def names(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if self.store_of(p.name) is not None)

    def record(self, name: str, store: str) -> None:
        path = self.root / name
        tmp = path / f".{_MANIFEST}.tmp"
        tmp.write_text(json.dumps({"store": store}) + "\n", encoding="utf-8")
        os.replace(tmp, path / _MANIFEST)

    def forget(self, name: str) -> None:
        (self.root / name / _MANIFEST).unlink(missing_ok=True)


class DatabaseCatalog:
    """Knowledge bases as rows of the shared database's ``kbs`` table."""

    def __init__(self, url: str) -> None:
        from hanlin.db.postgres import database

        self.db = database(url)

    def store_of(self, name: str) -> str | None:
        with self.db.connection() as conn:
            row = conn.execute("SELECT store FROM kbs WHERE name = %s", (name,)).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def names(self) -> list[str]:
        with self.db.connection() as conn:
            rows = conn.execute(
                "SELECT name FROM kbs WHERE store IS NOT NULL ORDER BY name"
            ).fetchall()
        return [str(r[0]) for r in rows]

    def record(self, name: str, store: str) -> None:
        with self.db.connection() as conn:
            conn.execute(
                "INSERT INTO kbs (name, store, created_at) VALUES (%s, %s, extract(epoch "
                "FROM now())) ON CONFLICT (name) DO UPDATE SET store = excluded.store",
                (name, store),
            )

    def forget(self, name: str) -> None:
        with self.db.connection() as conn:
            conn.execute("DELETE FROM kbs WHERE name = %s", (name,))


def catalog(settings: Settings) -> Catalog:
    """The catalog ``settings`` use: the shared database's when ``database_url`` is set."""
    if settings.database_url:
        return DatabaseCatalog(settings.database_url)
    return FolderCatalog(settings.home / "kb")
