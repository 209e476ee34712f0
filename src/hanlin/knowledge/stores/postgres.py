"""The PostgreSQL store: every knowledge base's rows in one database shared by any number of
servers and workers. Vectors are pgvector columns searched through a per-knowledge-base partial
HNSW index (iterative scans keep filtered searches at k rows; small or very selective sets are
searched exactly); keyword search is BM25 computed in SQL over postings of the same analyzer
tokens the embedded store indexes, skipping common terms' postings when that provably keeps
the exact top k (:mod:`postgres_bm25`). Opened when ``database_url`` is set (see
:mod:`hanlin.db`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hanlin.db.locks import AdvisoryLock
from hanlin.db.postgres import Database, database
from hanlin.errors import ConfigError, InvalidInputError, StoreLockedError
from hanlin.knowledge.filters import Filter
from hanlin.knowledge.stores import postgres_bm25 as bm25
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
from hanlin.knowledge.stores.postgres_sql import (
    CHUNK_COLUMNS,
    CHUNK_SELECT,
    DOC_SELECT,
    EXPORT_CHUNKS,
    EXPORT_DOC,
    FILE_COLUMNS,
    FILE_UPSERT,
    STATS_SQL,
    chunk_rows,
    file_rows,
    filter_sql,
    hnsw_index_name,
    postings,
    row_to_chunk,
    row_to_document,
    sync_hnsw_indexes,
)

if TYPE_CHECKING:
    import psycopg

    from hanlin.config import Settings

#: advisory-lock namespace of knowledge-base write locks (the key is (namespace, kb id))
_LOCK_NAMESPACE = 0x6B62
_COPY_POSTINGS = "COPY kb_postings (kb_id, term, chunk_id, tf, dl) FROM STDIN"


def _vec(v: Any) -> Vector:  # a pgvector.Vector as the driver loads it, or an array
    return np.asarray(v.to_numpy() if hasattr(v, "to_numpy") else v, dtype=np.float32)


class PostgresStore:
    """One knowledge base's rows in PostgreSQL, keyed by its (folder's) name in ``kbs``."""

    def __init__(
        self,
        directory: Path,
        *,
        analyzer_version: str = "default",
        settings: Settings | None = None,
        exact_search_below: int | None = None,
        lock_timeout: float = 120.0,
        url: str | None = None,
    ) -> None:
        url = url or (settings.database_url if settings is not None else None)
        if not url:
            raise ConfigError(
                "the postgres knowledge store needs database_url",
                hint='set database_url = "postgresql://…" in hanlin.toml (or '
                "HANLIN_DATABASE_URL), or use the embedded store: knowledge.store = 'sqlite'",
            )
        self.name = Path(directory).name
        if exact_search_below is None:
            exact_search_below = settings.knowledge.exact_search_below if settings else 20_000
        self.exact_search_below = exact_search_below
        self.lock_timeout = lock_timeout
        self.db: Database = database(url)
        with self.db.connection() as conn:
            row = conn.execute(
                "INSERT INTO kbs (name, created_at) VALUES (%s, %s) ON CONFLICT (name) "
                "DO UPDATE SET name = excluded.name RETURNING id",
                (self.name, time.time()),
            ).fetchone()
            assert row is not None
            self.kb = int(row[0])
            conn.execute(
                "INSERT INTO kb_stats (kb_id) VALUES (%s) ON CONFLICT DO NOTHING", (self.kb,)
            )
        self._lock = AdvisoryLock(
            self.db,
            _LOCK_NAMESPACE,
            self.kb,
            timeout=lock_timeout,
            on_timeout=lambda: StoreLockedError(
                f"knowledge base '{self.name}' is locked by another writer for over "
                f"{lock_timeout:.0f}s",
                hint="wait for the other ingest or re-embed to finish, then retry",
            ),
        )

    # --- the write lock -------------------------------------------------------------------
    @contextmanager
    def locked(self) -> Iterator[None]:
        """The knowledge base's write lock: re-entrant in this process, and a PostgreSQL
        advisory lock across processes (held by a dedicated connection while it is held)."""
        with self._lock.hold():
            yield

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection[Any]]:
        """A write transaction under the write lock."""
        with self.locked(), self.db.connection() as conn:
            yield conn

    # --- metadata ---------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        with self.db.connection() as conn:
            row = conn.execute(
                "SELECT value FROM kb_meta WHERE kb_id = %s AND key = %s", (self.kb, key)
            ).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as conn:
            self._set_meta(conn, {key: value})
        if key == "embedding_dim":
            self._ensure_index(int(value))

    def _set_meta(self, conn: psycopg.Connection[Any], items: Mapping[str, str]) -> None:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO kb_meta (kb_id, key, value) VALUES (%s, %s, %s) "
                "ON CONFLICT (kb_id, key) DO UPDATE SET value = excluded.value",
                [(self.kb, k, v) for k, v in items.items()],
            )

    def _dim(self) -> int | None:
        dim = self.get_meta("embedding_dim")
        return int(dim) if dim else None

    def _ensure_index(self, dim: int | None) -> None:
        """The partial HNSW index of this knowledge base's dimension, built without blocking
        writers; indexes of another dimension are dropped (all of them when ``dim`` is None)."""
        with self.db.unavailable(), self.db.pool.connection() as conn:
            conn.autocommit = True
            try:
                sync_hnsw_indexes(conn, self.kb, dim)
            finally:
                conn.autocommit = False

    # --- sources and files ------------------------------------------------------------------
    def add_source(self, uri: str, kind: str, options: dict[str, Any]) -> SourceRecord:
        with self._tx() as conn:
            row = conn.execute(
                "INSERT INTO kb_sources (kb_id, uri, kind, options, added_at) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (kb_id, uri) "
                "DO UPDATE SET options = excluded.options RETURNING id",
                (self.kb, uri, kind, json.dumps(options), time.time()),
            ).fetchone()
        assert row is not None
        return SourceRecord(id=int(row[0]), uri=uri, kind=kind, options=options)

    def list_sources(self) -> list[SourceRecord]:
        with self.db.connection() as conn:
            rows = conn.execute(
                "SELECT id, uri, kind, options FROM kb_sources WHERE kb_id = %s ORDER BY id",
                (self.kb,),
            ).fetchall()
        return [SourceRecord(int(r[0]), r[1], r[2], dict(r[3])) for r in rows]

    def get_file(self, path: str) -> FileRecord | None:
        with self.db.connection() as conn:
            row = conn.execute(
                f"SELECT {FILE_COLUMNS} FROM kb_files WHERE kb_id = %s AND path = %s",
                (self.kb, path),
            ).fetchone()
        return FileRecord(*row) if row else None

    def list_files(self, source_id: int | None = None) -> list[FileRecord]:
        sql = f"SELECT {FILE_COLUMNS} FROM kb_files WHERE kb_id = %s"
        params: list[Any] = [self.kb]
        if source_id is not None:
            sql += " AND source_id = %s"
            params.append(source_id)
        with self.db.connection() as conn:
            rows = conn.execute(sql + " ORDER BY path", params).fetchall()
        return [FileRecord(*r) for r in rows]

    def record_file(self, record: FileRecord) -> None:
        with self._tx() as conn:
            self._record_files(conn, [record])

    def _record_files(self, conn: psycopg.Connection[Any], records: Sequence[FileRecord]) -> None:
        if not records:
            return
        now = time.time()
        with conn.cursor() as cur:
            cur.executemany(FILE_UPSERT, file_rows(self.kb, records, now))

    def delete_file(self, path: str) -> int:
        with self._tx() as conn:
            n = conn.execute(
                "DELETE FROM kb_documents WHERE kb_id = %s AND file_path = %s", (self.kb, path)
            ).rowcount
            conn.execute("DELETE FROM kb_files WHERE kb_id = %s AND path = %s", (self.kb, path))
        return int(n)

    def remove_source(self, uri: str) -> int:
        with self._tx() as conn:
            row = conn.execute(
                "DELETE FROM kb_sources WHERE kb_id = %s AND uri = %s RETURNING id",
                (self.kb, uri),
            ).fetchone()
            if row is None:
                return 0
            n = conn.execute(
                "DELETE FROM kb_documents WHERE kb_id = %s AND file_path IN "
                "(SELECT path FROM kb_files WHERE kb_id = %s AND source_id = %s)",
                (self.kb, self.kb, row[0]),
            ).rowcount
            conn.execute(
                "DELETE FROM kb_files WHERE kb_id = %s AND source_id = %s", (self.kb, row[0])
            )
        return int(n)

    # --- documents ----------------------------------------------------------------------------
    def write(
        self,
        documents: Sequence[DocumentWrite],
        files: Sequence[FileRecord] = (),
        delete_keys: Sequence[str] = (),
    ) -> None:
        now = time.time()
        with self._tx() as conn:
            if delete_keys:
                conn.execute(
                    "DELETE FROM kb_documents WHERE kb_id = %s AND key = ANY(%s)",
                    (self.kb, list(delete_keys)),
                )
            for doc in documents:
                self._write_document(conn, doc, now)
            self._record_files(conn, files)

    def _write_document(
        self, conn: psycopg.Connection[Any], doc: DocumentWrite, now: float
    ) -> None:
        old = conn.execute(
            "DELETE FROM kb_documents WHERE kb_id = %s AND key = %s RETURNING created_at",
            (self.kb, doc.key),
        ).fetchone()
        row = conn.execute(
            "INSERT INTO kb_documents (kb_id, key, file_path, source, title, format, "
            "content_hash, metadata, n_chars, created_at, updated_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (
                self.kb,
                doc.key,
                doc.file_path,
                doc.source,
                doc.title,
                doc.format,
                doc.content_hash,
                json.dumps(doc.metadata, ensure_ascii=False),
                doc.n_chars,
                old[0] if old else now,
                now,
            ),
        ).fetchone()
        assert row is not None
        if not doc.chunks:
            return
        ids = [
            int(r[0])
            for r in conn.execute(
                "SELECT nextval('kb_chunks_id_seq') FROM generate_series(1, %s)",
                (len(doc.chunks),),
            )
        ]
        with conn.cursor() as cur:
            with cur.copy(f"COPY kb_chunks ({CHUNK_COLUMNS}) FROM STDIN") as copy:
                for values in chunk_rows(ids, self.kb, int(row[0]), doc.chunks):
                    copy.write_row(values)
            with cur.copy(_COPY_POSTINGS) as copy:
                for cid, w in zip(ids, doc.chunks, strict=True):
                    for posting in postings(cid, self.kb, w.tokens):
                        copy.write_row(posting)

    def document_hashes(self, file_path: str) -> dict[str, str]:
        with self.db.connection() as conn:
            rows = conn.execute(
                "SELECT key, content_hash FROM kb_documents WHERE kb_id = %s AND file_path = %s",
                (self.kb, file_path),
            ).fetchall()
        return {r[0]: r[1] for r in rows}

    def list_documents(self, limit: int | None = None) -> list[DocumentRecord]:
        sql = DOC_SELECT + " WHERE d.kb_id = %s ORDER BY d.key"
        params: list[Any] = [self.kb]
        if limit:
            sql += " LIMIT %s"
            params.append(int(limit))
        with self.db.connection() as conn:
            return [row_to_document(r) for r in conn.execute(sql, params).fetchall()]

    def get_document(self, key: str) -> DocumentRecord | None:
        with self.db.connection() as conn:
            row = conn.execute(
                DOC_SELECT + " WHERE d.kb_id = %s AND d.key = %s", (self.kb, key)
            ).fetchone()
        return row_to_document(row) if row else None

    def document_key(self, doc_id: int) -> str | None:
        with self.db.connection() as conn:
            row = conn.execute(
                "SELECT key FROM kb_documents WHERE kb_id = %s AND id = %s", (self.kb, doc_id)
            ).fetchone()
        return str(row[0]) if row else None

    def delete_documents(self, keys: Sequence[str]) -> int:
        with self._tx() as conn:
            n = conn.execute(
                "DELETE FROM kb_documents WHERE kb_id = %s AND key = ANY(%s)",
                (self.kb, list(keys)),
            ).rowcount
        return int(n)

    # --- vectors ------------------------------------------------------------------------------
    def vectors_for_text_hashes(self, hashes: Sequence[str]) -> dict[str, Vector]:
        with self.db.connection() as conn:
            rows = conn.execute(
                "SELECT DISTINCT ON (text_hash) text_hash, embedding FROM kb_chunks "
                "WHERE kb_id = %s AND text_hash = ANY(%s) AND embedding IS NOT NULL",
                (self.kb, list(dict.fromkeys(hashes))),
            ).fetchall()
        return {r[0]: _vec(r[1]) for r in rows}

    def vectors_for_ids(self, ids: Sequence[int]) -> dict[int, Vector]:
        with self.db.connection() as conn:
            rows = conn.execute(
                "SELECT id, embedding FROM kb_chunks WHERE kb_id = %s AND id = ANY(%s) "
                "AND embedding IS NOT NULL",
                (self.kb, [int(i) for i in ids]),
            ).fetchall()
        return {int(r[0]): _vec(r[1]) for r in rows}

    def chunks_without_vectors(self, limit: int) -> list[tuple[int, str]]:
        with self.db.connection() as conn:
            rows = conn.execute(
                "SELECT id, text FROM kb_chunks WHERE kb_id = %s AND embedding IS NULL "
                "ORDER BY id LIMIT %s",
                (self.kb, limit),
            ).fetchall()
        return [(int(r[0]), r[1]) for r in rows]

    def set_vectors(self, ids: Sequence[int], vectors: Vector) -> None:
        with self._tx() as conn, conn.cursor() as cur:
            cur.executemany(
                "UPDATE kb_chunks SET embedding = %s WHERE kb_id = %s AND id = %s",
                [(_vec(v), self.kb, int(i)) for i, v in zip(ids, vectors, strict=True)],
            )

    def clear_vectors(self) -> None:
        with self._tx() as conn:
            conn.execute("UPDATE kb_chunks SET embedding = NULL WHERE kb_id = %s", (self.kb,))

    # --- re-embedding ---------------------------------------------------------------------------
    def chunks_without_staged_vectors(
        self, space: str, limit: int
    ) -> list[tuple[int, str, str, list[str]]]:
        with self.db.connection() as conn:
            rows = conn.execute(
                "SELECT c.id, d.title, c.text, c.heading_path FROM kb_chunks c "
                "JOIN kb_documents d ON d.id = c.doc_id LEFT JOIN kb_vectors_next s "
                "ON s.chunk_id = c.id AND s.space = %s "
                "WHERE c.kb_id = %s AND s.chunk_id IS NULL ORDER BY c.id LIMIT %s",
                (space, self.kb, limit),
            ).fetchall()
        return [(int(r[0]), r[1], r[2], list(r[3])) for r in rows]

    def stage_vectors(self, space: str, ids: Sequence[int], vectors: Vector) -> None:
        with self._tx() as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO kb_vectors_next (chunk_id, kb_id, space, embedding) "
                "SELECT id, kb_id, %s, %s FROM kb_chunks WHERE kb_id = %s AND id = %s "
                "ON CONFLICT (chunk_id) DO UPDATE SET space = excluded.space, "
                "embedding = excluded.embedding",
                [(space, _vec(v), self.kb, int(i)) for i, v in zip(ids, vectors, strict=True)],
            )

    def count_staged_vectors(self, space: str) -> int:
        with self.db.connection() as conn:
            row = conn.execute(
                "SELECT count(*) FROM kb_vectors_next WHERE kb_id = %s AND space = %s",
                (self.kb, space),
            ).fetchone()
        return int(row[0]) if row else 0

    def discard_staged_vectors(self) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM kb_vectors_next WHERE kb_id = %s", (self.kb,))

    def swap_staged_vectors(self, space: str, meta: Mapping[str, str]) -> None:
        with self.locked():
            with self.db.connection() as conn:
                row = conn.execute(
                    "SELECT count(*) FROM kb_chunks c LEFT JOIN kb_vectors_next s "
                    "ON s.chunk_id = c.id AND s.space = %s "
                    "WHERE c.kb_id = %s AND s.chunk_id IS NULL",
                    (space, self.kb),
                ).fetchone()
                missing = int(row[0]) if row else 0
                if missing:
                    raise InvalidInputError(
                        f"{missing} chunks have no vector staged for {space}; nothing was swapped",
                        hint="stage a vector for every chunk first (`hanlin kb reembed` does)",
                    )
                old_dim = self._dim()
                if "embedding_dim" in meta and old_dim and int(meta["embedding_dim"]) != old_dim:
                    # the old dimension's index would refuse the new vectors
                    conn.execute(f"DROP INDEX IF EXISTS {hnsw_index_name(self.kb, old_dim)}")
                conn.execute(
                    "UPDATE kb_chunks c SET embedding = s.embedding FROM kb_vectors_next s "
                    "WHERE s.chunk_id = c.id AND c.kb_id = %s",
                    (self.kb,),
                )
                self._set_meta(conn, meta)
                conn.execute("DELETE FROM kb_vectors_next WHERE kb_id = %s", (self.kb,))
            if "embedding_dim" in meta:
                self._ensure_index(int(meta["embedding_dim"]))

    # --- keyword tokens -------------------------------------------------------------------------
    def chunk_texts(self, after_id: int, limit: int) -> list[tuple[int, str, str, list[str]]]:
        with self.db.connection() as conn:
            rows = conn.execute(
                "SELECT c.id, d.title, c.text, c.heading_path FROM kb_chunks c "
                "JOIN kb_documents d ON d.id = c.doc_id WHERE c.kb_id = %s AND c.id > %s "
                "ORDER BY c.id LIMIT %s",
                (self.kb, after_id, limit),
            ).fetchall()
        return [(int(r[0]), r[1], r[2], list(r[3])) for r in rows]

    def set_tokens(self, ids: Sequence[int], tokens: Sequence[str]) -> None:
        pairs = [(int(i), t) for i, t in zip(ids, tokens, strict=True)]
        with self._tx() as conn:
            with conn.cursor() as cur:
                cur.executemany(
                    "UPDATE kb_chunks SET tokens = %s, n_terms = %s WHERE kb_id = %s AND id = %s",
                    [(t, len(t.split()), self.kb, i) for i, t in pairs],
                )
            conn.execute(
                "DELETE FROM kb_postings WHERE chunk_id = ANY(%s)", ([i for i, _ in pairs],)
            )
            with conn.cursor() as cur, cur.copy(_COPY_POSTINGS) as cp:
                for i, t in pairs:
                    for posting in postings(i, self.kb, t):
                        cp.write_row(posting)

    # --- search -------------------------------------------------------------------------------
    def dense_search(
        self, vector: Vector, k: int, flt: Filter | None = None
    ) -> list[tuple[int, float]]:
        dim = self._dim()
        if dim is None or k <= 0:
            return []
        q = _vec(vector)
        where, params = filter_sql(flt) if flt else ("true", [])
        # the documents join only when a filter reads them
        join = " JOIN kb_documents d ON d.id = c.doc_id" if flt else ""
        base = (
            f"FROM kb_chunks c{join} WHERE c.kb_id = {self.kb} "
            f"AND c.embedding IS NOT NULL AND ({where})"
        )
        with self.db.connection() as conn:
            n = self._candidates(conn, base, params, flt)
            if n <= self.exact_search_below:  # small or very selective: exact, no index
                rows = conn.execute(
                    f"SELECT c.id, -(c.embedding <#> %s) AS s {base} ORDER BY s DESC, c.id "
                    "LIMIT %s",
                    [q, *params, k],
                ).fetchall()
                return [(int(r[0]), float(r[1])) for r in rows]
            # recall@10 vs exact at 300k chunks: ef 40 → 0.87, 100 → 0.94, 200 → 0.98
            # (bench/pg_scale.py); pgvector's ceiling is 1000
            conn.execute(f"SET LOCAL hnsw.ef_search = {min(1000, max(200, 4 * k))}")
            if flt:
                conn.execute("SET LOCAL hnsw.iterative_scan = strict_order")
            expr = f"c.embedding::vector({dim}) <#> %s::vector({dim})"
            rows = conn.execute(
                f"SELECT c.id, -({expr}) {base} ORDER BY {expr} LIMIT %s",
                [q, *params, q, k],
            ).fetchall()
        return [(int(r[0]), float(r[1])) for r in rows]

    def _candidates(
        self, conn: psycopg.Connection[Any], base: str, params: list[Any], flt: Filter | None
    ) -> int:
        """Rows a dense search would rank (up to the exact limit); unfiltered: ``kb_stats``."""
        if flt is None:
            row = conn.execute(
                "SELECT n_chunks FROM kb_stats WHERE kb_id = %s", (self.kb,)
            ).fetchone()
            return int(row[0]) if row else 0
        (n,) = conn.execute(
            f"SELECT count(*) FROM (SELECT 1 {base} LIMIT %s) t",
            [*params, self.exact_search_below + 1],
        ).fetchone() or (0,)
        return int(n)

    def keyword_search(
        self, tokens: Sequence[str], k: int, flt: Filter | None = None
    ) -> list[tuple[int, float]]:
        terms = list(dict.fromkeys(t for t in tokens if t))
        if not terms or k <= 0:
            return []
        where, params = filter_sql(flt) if flt else (None, [])
        with self.db.connection() as conn:
            return bm25.search(conn, self.kb, terms, k, where, params)[0]

    def score_dense(self, vector: Vector, ids: Sequence[int]) -> dict[int, float]:
        q = _vec(vector)
        return {cid: float(v @ q) for cid, v in self.vectors_for_ids(ids).items()}

    def get_chunks(self, ids: Sequence[int]) -> list[StoredChunk]:
        if not ids:
            return []
        with self.db.connection() as conn:
            rows = conn.execute(
                CHUNK_SELECT + " WHERE c.kb_id = %s AND c.id = ANY(%s)",
                (self.kb, [int(i) for i in ids]),
            ).fetchall()
        by_id = {int(r[0]): row_to_chunk(r) for r in rows}
        return [by_id[i] for i in ids if i in by_id]

    def document_chunks(self, key: str) -> list[StoredChunk]:
        with self.db.connection() as conn:
            rows = conn.execute(
                CHUNK_SELECT + " WHERE d.kb_id = %s AND d.key = %s ORDER BY c.ord",
                (self.kb, key),
            ).fetchall()
        return [row_to_chunk(r) for r in rows]

    def export_documents(self, keys: Sequence[str]) -> list[DocumentWrite]:
        out = []
        with self.db.connection() as conn:
            for key in keys:
                row = conn.execute(EXPORT_DOC, (self.kb, key)).fetchone()
                if row is None:
                    continue
                chunks = conn.execute(EXPORT_CHUNKS, (row[0],)).fetchall()
                out.append(export_row(row, chunks, _vec, lambda v: v))
        return out

    def iter_chunk_ids(self) -> Iterator[int]:
        after = 0
        while True:
            with self.db.connection() as conn:
                rows = conn.execute(
                    "SELECT id FROM kb_chunks WHERE kb_id = %s AND id > %s ORDER BY id LIMIT 10000",
                    (self.kb, after),
                ).fetchall()
            if not rows:
                return
            for (cid,) in rows:
                yield int(cid)
            after = int(rows[-1][0])

    # --- housekeeping ---------------------------------------------------------------------------
    def stats(self) -> StoreStats:
        with self.db.connection() as conn:
            row = conn.execute(STATS_SQL, {"kb": self.kb}).fetchone()
        return StoreStats(*(int(v) for v in row or ()))

    def flush(self) -> None:
        """Nothing to persist: PostgreSQL's indexes are updated inside each transaction."""

    def close(self) -> None:
        """The pool is the process's (:func:`hanlin.db.postgres.database`); nothing to close."""

    def drop(self) -> None:
        """Delete the knowledge base's rows (every table cascades from ``kbs``)."""
        with self._tx() as conn:
            conn.execute("DELETE FROM kbs WHERE id = %s", (self.kb,))
        self._ensure_index(None)
