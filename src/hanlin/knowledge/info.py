"""What ``kb show`` prints and the API returns about a knowledge base: :class:`KBInfo`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hanlin.knowledge.display import SourceNames
from hanlin.knowledge.stores.base import FileRecord, SourceRecord, StoreStats


@dataclass(slots=True)
class KBInfo:
    """What ``kb show`` prints."""

    name: str
    path: Path
    embedding_model: str
    embedding_space: str
    analyzer: str
    created_at: float
    stats: StoreStats
    sources: list[SourceRecord]
    failures: list[FileRecord]

    def summary(self) -> dict[str, Any]:
        """The knowledge base in a list (``kb ls --json``, ``GET /api/kb``)."""
        s = self.stats
        return {
            "name": self.name,
            "documents": s.documents,
            "chunks": s.chunks,
            "embedding_model": self.embedding_model,
            "size_bytes": s.size_bytes,
            "created_at": self.created_at,
        }

    def to_dict(self, *, public: bool = True) -> dict[str, Any]:
        """The knowledge base with its sources and failed files (``kb show --json``,
        ``GET /api/kb/{name}``). ``public``: sources by the names API clients see
        (:mod:`hanlin.knowledge.display`); the CLI, on the same machine, passes False for full
        paths, and gets the knowledge base's folder as ``path`` too."""
        s = self.stats
        names = SourceNames(self.sources) if public else None
        shown = names.source if names is not None else str
        local = {} if public else {"path": str(self.path)}
        return (
            self.summary()
            | local
            | {
                "embedding_space": self.embedding_space,
                "analyzer": self.analyzer,
                "files": s.files,
                "failed_files": s.failed_files,
                "vectors": s.vectors,
                "sources": [
                    {"id": src.id, "uri": shown(src.uri), "kind": src.kind, "name": shown(src.uri)}
                    for src in self.sources
                ],
                "failures": [f.to_dict(names) for f in self.failures],
            }
        )
