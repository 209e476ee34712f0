"""The embedded store: SQLite (WAL) is the source of truth; a vector index (exact, then usearch
HNSW past 20k vectors) and a tantivy BM25 index are derived caches caught up from SQLite's
change log (see ``indexes/``)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from filelock import FileLock, Timeout

from hanlin.errors import StoreCorruptError, StoreLockedError
from hanlin.knowledge.filters import Filter
from hanlin.knowledge.indexes.keyword import KeywordIndex
from hanlin.knowledge.indexes.vectors import VectorIndex
from hanlin.knowledge.stores.base import (
    DocumentRecord,
    DocumentWrite,
    FileRecord,
    SourceRecord,
    StoredChunk,
    StoreStats,
    Vector,
    export_row,
)
from hanlin.knowledge.stores.schema import migrate, transaction
from hanlin.knowledge.stores.sqlite_indexes import DerivedIndexes
from hanlin.knowledge.stores.sqlite_sql import (
    CHUNK_SELECT,
    DOC_SELECT,
    EXPORT_CHUNKS,
    EXPORT_DOC,
    UNSTAGED_CHUNKS,
    delete_source,
    filter_sql,
    from_blob,
    row_to_chunk,
    row_to_document,
    swap_in_staged,
    to_blob,
)

if TYPE_CHECKING:
    from hanlin.config import Settings


class SQLiteStore(DerivedIndexes):
    """A knowledge store in one folder: ``kb.sqlite`` + vectors (``vectors.flat.npz`` while
    exact, ``vectors.usearch`` once an HNSW graph) + ``keyword/``.

    Vectors live in SQLite; the dimension and vector space (model name + version) are read from
    the ``embedding_dim`` / ``embedding_space`` meta keys, which the knowledge base sets.
    """

    def __init__(
        self,
        directory: Path,
        *,
        analyzer_version: str = "default",
        settings: Settings | None = None,
        exact_search_below: int | None = None,
        lock_timeout: float = 120.0,
    ) -> None:
        """Open (or create) the store in ``directory`` — the :class:`StoreFactory` contract.

        ``exact_search_below`` defaults to ``settings.knowledge.exact_search_below``."""
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.dir / "kb.sqlite"
        if exact_search_below is None:
            exact_search_below = settings.knowledge.exact_search_below if settings else 20_000
        self.exact_search_below = exact_search_below
        try:
            self.conn = sqlite3.connect(
                self.db_path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.conn.execute("PRAGMA busy_timeout=30000")
            migrate(self.conn)
        except sqlite3.DatabaseError as exc:
            raise StoreCorruptError(
                f"cannot open {self.db_path}: {exc}",
                hint="restore a backup, or remove the knowledge base and add its sources again",
            ) from exc
        self.keyword = KeywordIndex(self.dir, analyzer_version)
        self._vectors: VectorIndex | None = None
        self._lock = FileLock(str(self.dir / "write.lock"), timeout=lock_timeout)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store's write lock (re-entrant). Every write method takes it, so two
        processes writing the same store interleave whole transactions and index commits."""
        try:
            with self._lock:
                yield
        except Timeout as exc:
            raise StoreLockedError(
                f"{self.dir} is locked by another writer for over {self._lock.timeout:.0f}s",
                hint="wait for the other `hanlin kb add/sync` to finish, then retry",
            ) from exc

    # --- metadata ---------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self.locked():
            self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # --- sources and files ------------------------------------------------------------------
    def add_source(self, uri: str, kind: str, options: dict[str, Any]) -> SourceRecord:
        with self.locked():
            self._add_source(uri, kind, options)
        row = self.conn.execute("SELECT id FROM sources WHERE uri = ?", (uri,)).fetchone()
        return SourceRecord(id=row[0], uri=uri, kind=kind, options=options)

    def _add_source(self, uri: str, kind: str, options: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT INTO sources(uri, kind, options, added_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(uri) DO UPDATE SET options = excluded.options",
            (uri, kind, json.dumps(options), time.time()),
        )

    def list_sources(self) -> list[SourceRecord]:
        rows = self.conn.execute("SELECT id, uri, kind, options FROM sources ORDER BY id")
        return [SourceRecord(r[0], r[1], r[2], json.loads(r[3])) for r in rows]

    def get_file(self, path: str) -> FileRecord | None:
        row = self.conn.execute(
            "SELECT path, source_id, size, mtime_ns, content_hash, status, error, hint "
            "FROM files WHERE path = ?",
            (path,),
        ).fetchone()
        return FileRecord(*row) if row else None

    def list_files(self, source_id: int | None = None) -> list[FileRecord]:
        sql = "SELECT path, source_id, size, mtime_ns, content_hash, status, error, hint FROM files"
        rows = (
            self.conn.execute(sql + " WHERE source_id = ? ORDER BY path", (source_id,))
            if source_id is not None
            else self.conn.execute(sql + " ORDER BY path")
        )
        return [FileRecord(*r) for r in rows]

    def record_file(self, record: FileRecord) -> None:
        with self.locked(), transaction(self.conn):
            self._record_file(record)

    def _record_file(self, r: FileRecord) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                r.path,
                r.source_id,
                r.size,
                r.mtime_ns,
                r.content_hash,
                r.status,
                r.error,
                r.hint,
                time.time(),
            ),
        )

    def delete_file(self, path: str) -> int:
        with self.locked():
            with transaction(self.conn):
                n = self.conn.execute("DELETE FROM documents WHERE file_path = ?", (path,)).rowcount
                self.conn.execute("DELETE FROM files WHERE path = ?", (path,))
            self._after_write()
        return int(n)

    def remove_source(self, uri: str) -> int:
        with self.locked():
            with transaction(self.conn):
                n = delete_source(self.conn, uri)
            self._after_write()
        return n

    # --- documents ----------------------------------------------------------------------------
    def write(
        self,
        documents: Sequence[DocumentWrite],
        files: Sequence[FileRecord] = (),
        delete_keys: Sequence[str] = (),
    ) -> None:
        with self.locked():
            self._write(documents, files, delete_keys)
            self._after_write()

    def _write(
        self,
        documents: Sequence[DocumentWrite],
        files: Sequence[FileRecord],
        delete_keys: Sequence[str],
    ) -> None:
        now = time.time()
        with transaction(self.conn):
            for key in delete_keys:
                self.conn.execute("DELETE FROM documents WHERE key = ?", (key,))
            for doc in documents:
                old = self.conn.execute(
                    "SELECT id, created_at FROM documents WHERE key = ?", (doc.key,)
                ).fetchone()
                if old:
                    self.conn.execute("DELETE FROM documents WHERE id = ?", (old[0],))
                cur = self.conn.execute(
                    "INSERT INTO documents(key, file_path, source, title, format, content_hash, "
                    "metadata, n_chars, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (
                        doc.key,
                        doc.file_path,
                        doc.source,
                        doc.title,
                        doc.format,
                        doc.content_hash,
                        json.dumps(doc.metadata, ensure_ascii=False),
                        doc.n_chars,
                        old[1] if old else now,
                        now,
                    ),
                )
                doc_id = cur.lastrowid
                self.conn.executemany(
                    "INSERT INTO chunks(doc_id, ord, text, tokens, text_hash, heading_path, page, "
                    "page_end, char_start, char_end, n_tokens, kind, embedding) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    [
                        (
                            doc_id,
                            w.chunk.ord,
                            w.chunk.text,
                            w.tokens,
                            w.text_hash,
                            json.dumps(w.chunk.heading_path, ensure_ascii=False),
                            w.chunk.page,
                            w.chunk.page_end,
                            w.chunk.char_start,
                            w.chunk.char_end,
                            w.chunk.n_tokens,
                            w.chunk.kind,
                            None if w.vector is None else to_blob(w.vector),
                        )
                        for w in doc.chunks
                    ],
                )
            for record in files:
                self._record_file(record)

    def document_hashes(self, file_path: str) -> dict[str, str]:
        rows = self.conn.execute(
            "SELECT key, content_hash FROM documents WHERE file_path = ?", (file_path,)
        )
        return {r[0]: r[1] for r in rows}

    def list_documents(self, limit: int | None = None) -> list[DocumentRecord]:
        sql = DOC_SELECT + " ORDER BY d.key" + (f" LIMIT {int(limit)}" if limit else "")
        return [row_to_document(r) for r in self.conn.execute(sql)]

    def get_document(self, key: str) -> DocumentRecord | None:
        row = self.conn.execute(DOC_SELECT + " WHERE d.key = ?", (key,)).fetchone()
        return row_to_document(row) if row else None

    def document_key(self, doc_id: int) -> str | None:
        row = self.conn.execute("SELECT key FROM documents WHERE id = ?", (doc_id,)).fetchone()
        return str(row[0]) if row else None

    def delete_documents(self, keys: Sequence[str]) -> int:
        with self.locked():
            with transaction(self.conn):
                n = sum(
                    self.conn.execute("DELETE FROM documents WHERE key = ?", (k,)).rowcount
                    for k in keys
                )
            self._after_write()
        return int(n)

    # --- vectors ------------------------------------------------------------------------------
    def _vectors_where(self, column: str, keys: Sequence[Any]) -> dict[Any, Vector]:
        """Stored vectors keyed by ``column`` (``id`` or ``text_hash``), in batches of 900."""
        out: dict[Any, Vector] = {}
        unique = list(dict.fromkeys(keys))
        for i in range(0, len(unique), 900):
            part = unique[i : i + 900]
            rows = self.conn.execute(
                f"SELECT {column}, embedding FROM chunks WHERE embedding IS NOT NULL "
                f"AND {column} IN ({','.join('?' * len(part))})",
                part,
            )
            out.update((key, from_blob(blob)) for key, blob in rows)
        return out

    def vectors_for_text_hashes(self, hashes: Sequence[str]) -> dict[str, Vector]:
        return self._vectors_where("text_hash", hashes)

    def vectors_for_ids(self, ids: Sequence[int]) -> dict[int, Vector]:
        return self._vectors_where("id", ids)

    def chunks_without_vectors(self, limit: int) -> list[tuple[int, str]]:
        rows = self.conn.execute(
            "SELECT id, text FROM chunks WHERE embedding IS NULL ORDER BY id LIMIT ?", (limit,)
        )
        return [(r[0], r[1]) for r in rows]

    def set_vectors(self, ids: Sequence[int], vectors: Vector) -> None:
        with self.locked():
            with transaction(self.conn):
                self.conn.executemany(
                    "UPDATE chunks SET embedding = ? WHERE id = ?",
                    [(to_blob(v), int(i)) for i, v in zip(ids, vectors, strict=True)],
                )
            self._after_write()

    def chunk_texts(self, after_id: int, limit: int) -> list[tuple[int, str, str, list[str]]]:
        """``(id, document title, text, heading path)`` of chunks with id > ``after_id``."""
        rows = self.conn.execute(
            "SELECT c.id, d.title, c.text, c.heading_path FROM chunks c "
            "JOIN documents d ON d.id = c.doc_id WHERE c.id > ? ORDER BY c.id LIMIT ?",
            (after_id, limit),
        )
        return [(r[0], r[1], r[2], json.loads(r[3])) for r in rows]

    def set_tokens(self, ids: Sequence[int], tokens: Sequence[str]) -> None:
        """Replace the keyword tokens of chunks (after an analyzer change)."""
        with self.locked():
            with transaction(self.conn):
                self.conn.executemany(
                    "UPDATE chunks SET tokens = ? WHERE id = ?",
                    [(t, int(i)) for i, t in zip(ids, tokens, strict=True)],
                )
            self._after_write()

    def clear_vectors(self) -> None:
        with self.locked(), transaction(self.conn):
            self.conn.execute("UPDATE chunks SET embedding = NULL")
        self._vectors = None
        with self.locked():
            for f in ("vectors.usearch", "vectors.flat.npz", "vectors.json"):
                (self.dir / f).unlink(missing_ok=True)

    # --- re-embedding ---------------------------------------------------------------------------
    def chunks_without_staged_vectors(
        self, space: str, limit: int
    ) -> list[tuple[int, str, str, list[str]]]:
        rows = self.conn.execute(UNSTAGED_CHUNKS, (space, limit))
        return [(r[0], r[1], r[2], json.loads(r[3])) for r in rows]

    def stage_vectors(self, space: str, ids: Sequence[int], vectors: Vector) -> None:
        with self.locked(), transaction(self.conn):
            self.conn.executemany(
                "INSERT OR REPLACE INTO chunk_vectors_next(chunk_id, space, embedding) "
                "SELECT id, ?, ? FROM chunks WHERE id = ?",  # a chunk deleted meanwhile: skip
                [(space, to_blob(v), int(i)) for i, v in zip(ids, vectors, strict=True)],
            )

    def count_staged_vectors(self, space: str) -> int:
        sql = "SELECT COUNT(*) FROM chunk_vectors_next WHERE space = ?"
        return int(self.conn.execute(sql, (space,)).fetchone()[0])

    def discard_staged_vectors(self) -> None:
        with self.locked(), transaction(self.conn):
            self.conn.execute("DELETE FROM chunk_vectors_next")

    def swap_staged_vectors(self, space: str, meta: Mapping[str, str]) -> None:
        with self.locked():
            with transaction(self.conn):
                swap_in_staged(self.conn, space, meta)
            # the derived index is rebuilt for the new space; after a crash right here the next
            # open rebuilds it too (its sidecar names the old space)
            self._vectors = None
            index = self._vector_index()
            if index is not None:
                index.reset()
            self._flush()

    # --- search -------------------------------------------------------------------------------
    def allowed_ids(self, flt: Filter) -> list[int]:
        where, params = filter_sql(flt)
        sql = f"SELECT c.id FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE {where}"
        return [r[0] for r in self.conn.execute(sql, params)]

    def dense_search(
        self, vector: Vector, k: int, flt: Filter | None = None
    ) -> list[tuple[int, float]]:
        self.refresh()
        index = self._vector_index()
        if index is None or len(index) == 0:
            return []
        if flt:
            allowed = self.allowed_ids(flt)
            if len(allowed) <= self.exact_search_below:
                return self._exact(vector, allowed, k)
            allowed_set = set(allowed)
            want = k * 8
            while True:
                hits = [h for h in index.search(vector, want) if h[0] in allowed_set]
                if len(hits) >= k or want >= len(index):
                    return hits[:k]
                want *= 4
        return index.search(vector, k, exact=len(index) <= self.exact_search_below)

    def _exact(self, vector: Vector, ids: Sequence[int], k: int) -> list[tuple[int, float]]:
        vecs = self.vectors_for_ids(ids)
        if not vecs:
            return []
        keys = np.fromiter(vecs.keys(), dtype=np.int64, count=len(vecs))
        scores = np.vstack(list(vecs.values())) @ np.asarray(vector, dtype=np.float32)
        top = np.argsort(-scores, kind="stable")[:k]
        return [(int(keys[i]), float(scores[i])) for i in top]

    def keyword_search(
        self, tokens: Sequence[str], k: int, flt: Filter | None = None
    ) -> list[tuple[int, float]]:
        self._catch_up_keyword()
        allowed = self.allowed_ids(flt) if flt else None
        hits = self.keyword.search(tokens, k, allowed)
        if not hits:
            return []
        # a stale index (another process is mid-write) may still hold deleted chunks
        placeholders = ",".join("?" * len(hits))
        alive = {
            r[0]
            for r in self.conn.execute(
                f"SELECT id FROM chunks WHERE id IN ({placeholders})", [h[0] for h in hits]
            )
        }
        return [h for h in hits if h[0] in alive]

    def score_dense(self, vector: Vector, ids: Sequence[int]) -> dict[int, float]:
        """Exact cosine similarity of ``vector`` with the given chunks (for fusion)."""
        vecs = self.vectors_for_ids(ids)
        q = np.asarray(vector, dtype=np.float32)
        return {cid: float(v @ q) for cid, v in vecs.items()}

    def get_chunks(self, ids: Sequence[int]) -> list[StoredChunk]:
        if not ids:
            return []
        by_id: dict[int, StoredChunk] = {}
        for i in range(0, len(ids), 900):
            part = list(ids[i : i + 900])
            rows = self.conn.execute(
                CHUNK_SELECT + f" WHERE c.id IN ({','.join('?' * len(part))})", part
            )
            by_id.update((r[0], row_to_chunk(r)) for r in rows)
        return [by_id[i] for i in ids if i in by_id]

    def document_chunks(self, key: str) -> list[StoredChunk]:
        rows = self.conn.execute(CHUNK_SELECT + " WHERE d.key = ? ORDER BY c.ord", (key,))
        return [row_to_chunk(r) for r in rows]

    def export_documents(self, keys: Sequence[str]) -> list[DocumentWrite]:
        out = []
        for key in keys:
            row = self.conn.execute(EXPORT_DOC + " WHERE key = ?", (key,)).fetchone()
            if row is None:
                continue
            chunks = self.conn.execute(EXPORT_CHUNKS, (row[0],)).fetchall()
            out.append(export_row(row, chunks, from_blob, json.loads))
        return out

    def iter_chunk_ids(self) -> Iterator[int]:
        for row in self.conn.execute("SELECT id FROM chunks ORDER BY id"):
            yield int(row[0])

    # --- housekeeping ---------------------------------------------------------------------------
    def stats(self) -> StoreStats:
        one = lambda sql: int(self.conn.execute(sql).fetchone()[0])  # noqa: E731
        size = sum(p.stat().st_size for p in self.dir.rglob("*") if p.is_file())
        return StoreStats(
            documents=one("SELECT COUNT(*) FROM documents"),
            chunks=one("SELECT COUNT(*) FROM chunks"),
            files=one("SELECT COUNT(*) FROM files"),
            failed_files=one("SELECT COUNT(*) FROM files WHERE status = 'failed'"),
            vectors=one("SELECT COUNT(*) FROM chunks WHERE embedding IS NOT NULL"),
            size_bytes=size,
        )

    def close(self) -> None:
        self.keyword.rollback()
        self.conn.close()
