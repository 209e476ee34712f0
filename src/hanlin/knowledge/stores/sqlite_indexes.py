"""The SQLite store's derived indexes — the vector index and the tantivy keyword index — kept
caught up with SQLite's change log; a mixin of
:class:`~hanlin.knowledge.stores.sqlite.SQLiteStore`."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock, Timeout

from hanlin.knowledge.indexes.keyword import KeywordIndex
from hanlin.knowledge.indexes.vectors import VectorIndex
from hanlin.knowledge.stores.sqlite_sql import from_blob

_BATCH = 5000


class DerivedIndexes:
    """Needs ``conn``, ``dir``, ``keyword``, ``_vectors``, ``_lock`` and
    ``exact_search_below`` from the store."""

    conn: sqlite3.Connection
    dir: Path
    keyword: KeywordIndex
    _vectors: VectorIndex | None
    _lock: FileLock
    exact_search_below: int

    def locked(self) -> Any:  # provided by the store
        raise NotImplementedError

    def _vector_index(self) -> VectorIndex | None:
        meta = dict(
            self.conn.execute(
                "SELECT key, value FROM meta WHERE key IN ('embedding_dim', 'embedding_space')"
            ).fetchall()
        )
        dim, space = meta.get("embedding_dim"), meta.get("embedding_space")
        if self._vectors is not None and (space, dim) != (
            self._vectors.space,
            str(self._vectors.dim),
        ):
            self._vectors = None  # another process re-embedded: rebuild for the new space
        if self._vectors is None:
            if dim is None or space is None:
                return None
            self._vectors = VectorIndex(
                self.dir, int(dim), space, hnsw_above=self.exact_search_below
            )
        return self._vectors

    def refresh(self, write: bool = False) -> None:
        """Catch derived indexes up with SQLite. The keyword index is only written when
        ``write`` (the caller holds the knowledge base's write lock); the vector index is
        caught up in memory either way and persisted by :meth:`flush`."""
        vectors = self._vector_index()
        targets: list[Any] = [vectors] if vectors is not None else []
        if write:
            targets.append(self.keyword)
        for index in targets:
            self._catch_up(index)

    def _after_write(self) -> None:
        """Bring both indexes up to date and commit the keyword index, so the next writer
        (maybe another process) finds it consistent."""
        self.refresh(write=True)
        self.keyword.commit()

    def _catch_up_keyword(self) -> None:
        """After a crashed writer the keyword index may lag SQLite: catch it up unless someone
        else is writing right now (that writer catches it up itself)."""
        if self.keyword_is_current():
            return
        try:
            with self._lock.acquire(timeout=0):
                self._after_write()
        except Timeout:
            pass

    def keyword_is_current(self) -> bool:
        """Whether the on-disk keyword index has every change SQLite has."""
        top = self.conn.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()[0]
        return bool(self.keyword.disk_seq() >= top)

    def _catch_up(self, index: VectorIndex | KeywordIndex) -> None:
        is_vec = isinstance(index, VectorIndex)
        self.conn.execute("BEGIN")  # one snapshot for the log and the rows
        try:
            top = self.conn.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()[0]
            if top <= index.applied_seq:
                return
            low = self.conn.execute("SELECT MIN(seq) FROM changes").fetchone()[0] or 0
            if index.applied_seq == 0 or low > index.applied_seq + 1:
                index.reset()  # no usable log: rebuild everything from SQLite
                cursor = self.conn.execute(
                    "SELECT id, embedding FROM chunks WHERE embedding IS NOT NULL"
                    if is_vec
                    else "SELECT id, tokens FROM chunks"
                )
                self._apply(index, cursor, [])
            else:
                ids = [
                    r[0]
                    for r in self.conn.execute(
                        "SELECT DISTINCT chunk_id FROM changes WHERE seq > ? AND seq <= ?",
                        (index.applied_seq, top),
                    )
                ]
                for i in range(0, len(ids), 900):
                    part = ids[i : i + 900]
                    col = "embedding" if is_vec else "tokens"
                    rows = self.conn.execute(
                        f"SELECT id, {col} FROM chunks WHERE {col} IS NOT NULL "
                        f"AND id IN ({','.join('?' * len(part))})",
                        part,
                    ).fetchall()
                    present = {r[0] for r in rows}
                    self._apply(index, rows, [c for c in part if c not in present])
            index.applied_seq = top
        finally:
            self.conn.execute("COMMIT")

    @staticmethod
    def _apply(
        index: VectorIndex | KeywordIndex, rows: Iterable[tuple[Any, Any]], deletes: list[int]
    ) -> None:
        if deletes:
            index.delete(deletes)
        it = iter(rows)
        while batch := list(islice(it, _BATCH)):
            if isinstance(index, VectorIndex):
                index.upsert([r[0] for r in batch], np.vstack([from_blob(r[1]) for r in batch]))
            else:
                index.upsert([(r[0], r[1]) for r in batch])

    def flush(self) -> None:
        """Persist both derived indexes and trim the change log."""
        with self.locked():
            self._flush()

    def _flush(self) -> None:
        self.refresh(write=True)
        self.keyword.commit()
        vectors = self._vector_index()
        if vectors is not None:
            vectors.save()
        low = min(self.keyword.applied_seq, vectors.applied_seq if vectors else 1 << 62)
        self.conn.execute("DELETE FROM changes WHERE seq < ?", (low,))

    def rebuild_indexes(self) -> None:
        """Drop and rebuild both derived indexes from SQLite."""
        with self.locked():
            self.keyword.reset()
            if self._vector_index() is not None:
                assert self._vectors is not None
                self._vectors.reset()
            self._flush()
