"""SQL of the PostgreSQL store: filter compilation, row conversion, postings and vector
queries (BM25 itself is :mod:`postgres_bm25`).

Every knowledge base's rows share the tables of :mod:`hanlin.db.migrations`, keyed by the
knowledge base's integer id. That id and the vector dimension are written into queries as
integer literals (never user text): the planner can only use a knowledge base's partial HNSW
index when it sees the literal ``kb_id`` the index is restricted to.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from hanlin.knowledge.filters import Filter
from hanlin.knowledge.stores.base import DocumentRecord, StoredChunk

_COLUMNS = {
    "source": "d.source",
    "format": "d.format",
    "title": "d.title",
    "doc": "d.key",
    "page": "c.page",
}
_SQL_OPS = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def filter_sql(flt: Filter) -> tuple[str, list[Any]]:
    """``WHERE`` clause over chunks ``c`` joined with documents ``d``, and its parameters.

    Metadata equality is a containment test (``metadata @> {...}``), which the GIN index on
    ``kb_documents.metadata`` answers; ranges compare JSON values of the same type."""
    clauses: list[str] = []
    params: list[Any] = []
    for cond in flt.conditions:
        if cond.key in _COLUMNS:
            expr = _COLUMNS[cond.key]
            if cond.op == "in":
                clauses.append(f"{expr} = ANY(%s)")
                params.append(list(cond.value))
            else:
                clauses.append(f"{expr} {_SQL_OPS[cond.op]} %s")
                params.append(cond.value)
            continue
        path = cond.key.split(".")
        if cond.op == "eq":
            clauses.append("d.metadata @> %s::jsonb")
            params.append(json.dumps(_nest(path, cond.value)))
        elif cond.op == "in":
            values = list(cond.value)
            if not values:
                clauses.append("false")
                continue
            clauses.append("(" + " OR ".join(["d.metadata @> %s::jsonb"] * len(values)) + ")")
            params.extend(json.dumps(_nest(path, v)) for v in values)
        else:
            expr = "(d.metadata #> %s::text[])"
            value = json.dumps(cond.value)
            if cond.op == "ne":
                clauses.append(f"{expr} <> %s::jsonb")
                params.extend([path, value])
            else:
                clauses.append(
                    f"(jsonb_typeof({expr}) = jsonb_typeof(%s::jsonb) "
                    f"AND {expr} {_SQL_OPS[cond.op]} %s::jsonb)"
                )
                params.extend([path, value, path, value])
    return " AND ".join(clauses) or "true", params


def _nest(path: list[str], value: Any) -> Any:
    for part in reversed(path):
        value = {part: value}
    return value


def _length_buckets() -> list[int]:
    """The 256 document lengths a BM25 "field norm" byte can stand for (Lucene's and
    tantivy's scheme): exact up to 40, then eight buckets per doubling of the step."""
    table, step = list(range(41)), 2
    while len(table) < 256:
        for _ in range(8):
            table.append(table[-1] + step)
        step *= 2
    return table[:256]


_BUCKETS = _length_buckets()


def quantized_length(n: int) -> int:
    """A chunk's token count as the embedded store's BM25 sees it (the largest bucket ≤ n),
    so both stores score, and rank, alike."""
    return _BUCKETS[bisect_right(_BUCKETS, n) - 1]


def postings(chunk_id: int, kb_id: int, tokens: str) -> Iterator[tuple[int, str, int, int, int]]:
    """``(kb_id, term, chunk_id, tf, dl)`` rows of one chunk's analyzer tokens (``dl`` is the
    quantized length; the average length uses the exact ones)."""
    terms = tokens.split()
    dl = quantized_length(len(terms))
    for term, tf in Counter(terms).items():
        yield kb_id, term, chunk_id, tf, dl


CHUNK_SELECT = """
    SELECT c.id, d.key, d.source, d.title, c.text, c.ord, c.heading_path, c.page, c.page_end,
           c.char_start, c.char_end, c.kind, d.metadata
    FROM kb_chunks c JOIN kb_documents d ON d.id = c.doc_id
"""


def row_to_chunk(row: tuple[Any, ...]) -> StoredChunk:
    return StoredChunk(
        id=int(row[0]),
        doc_key=row[1],
        source=row[2],
        title=row[3],
        text=row[4],
        ord=row[5],
        heading_path=list(row[6]),
        page=row[7],
        page_end=row[8],
        char_start=row[9],
        char_end=row[10],
        kind=row[11],
        metadata=dict(row[12]),
    )


DOC_SELECT = """
    SELECT d.id, d.key, d.source, d.title, d.format, d.content_hash,
           (SELECT count(*) FROM kb_chunks c WHERE c.doc_id = d.id), d.n_chars, d.metadata,
           d.updated_at
    FROM kb_documents d
"""


def row_to_document(row: tuple[Any, ...]) -> DocumentRecord:
    return DocumentRecord(
        id=int(row[0]),
        key=row[1],
        source=row[2],
        title=row[3],
        format=row[4],
        content_hash=row[5],
        n_chunks=int(row[6]),
        n_chars=row[7],
        metadata=dict(row[8]),
        updated_at=row[9],
    )


def hnsw_index_name(kb: int, dim: int) -> str:
    return f"kb_chunks_hnsw_{kb}_{dim}"


def hnsw_index_sql(kb: int, dim: int, concurrently: bool = False) -> str:
    """The partial HNSW index of one knowledge base's vectors (inner product: vectors are
    unit length, so it orders like cosine)."""
    how = "CONCURRENTLY " if concurrently else ""
    return (
        f"CREATE INDEX {how}IF NOT EXISTS {hnsw_index_name(kb, dim)} ON kb_chunks "
        f"USING hnsw ((embedding::vector({dim})) vector_ip_ops) WHERE kb_id = {kb}"
    )


def sync_hnsw_indexes(conn: Any, kb: int, dim: int | None) -> None:
    """On an autocommit connection: keep only knowledge base ``kb``'s HNSW index for ``dim``
    (none when ``dim`` is None), built and dropped CONCURRENTLY so writers never wait."""
    names = [
        r[0]
        for r in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'kb_chunks' AND indexname LIKE %s",
            (f"kb_chunks_hnsw_{kb}_%",),
        ).fetchall()
    ]
    for name in names:
        if dim is None or name != hnsw_index_name(kb, dim):
            conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
    if dim is not None and hnsw_index_name(kb, dim) not in names:
        conn.execute(hnsw_index_sql(kb, dim, concurrently=True))


def chunk_rows(
    ids: Iterable[int], kb: int, doc_id: int, writes: Iterable[Any]
) -> Iterator[tuple[Any, ...]]:
    """COPY rows of :data:`CHUNK_COLUMNS` for one document's chunk writes."""
    for cid, w in zip(ids, writes, strict=True):
        c = w.chunk
        yield (
            cid,
            kb,
            doc_id,
            c.ord,
            c.text,
            w.tokens,
            len(w.tokens.split()),
            w.text_hash,
            json.dumps(c.heading_path, ensure_ascii=False),
            c.page,
            c.page_end,
            c.char_start,
            c.char_end,
            c.n_tokens,
            c.kind,
            w.vector,
        )


CHUNK_COLUMNS = (
    "id, kb_id, doc_id, ord, text, tokens, n_terms, text_hash, heading_path, page, page_end, "
    "char_start, char_end, n_tokens, kind, embedding"
)


FILE_COLUMNS = "path, source_id, size, mtime_ns, content_hash, status, error, hint"
FILE_UPSERT = (
    f"INSERT INTO kb_files (kb_id, {FILE_COLUMNS}, updated_at) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (kb_id, path) DO "
    "UPDATE SET source_id = excluded.source_id, size = excluded.size, "
    "mtime_ns = excluded.mtime_ns, content_hash = excluded.content_hash, "
    "status = excluded.status, error = excluded.error, hint = excluded.hint, "
    "updated_at = excluded.updated_at"
)
STATS_SQL = """SELECT
    (SELECT count(*) FROM kb_documents WHERE kb_id = %(kb)s),
    (SELECT count(*) FROM kb_chunks WHERE kb_id = %(kb)s),
    (SELECT count(*) FROM kb_files WHERE kb_id = %(kb)s),
    (SELECT count(*) FROM kb_files WHERE kb_id = %(kb)s AND status = 'failed'),
    (SELECT count(*) FROM kb_chunks WHERE kb_id = %(kb)s AND embedding IS NOT NULL),
    (SELECT coalesce(sum(pg_column_size(c.*)), 0) FROM kb_chunks c WHERE kb_id = %(kb)s)"""

#: a stored document and its chunks as they were written (for ``export_documents``)
EXPORT_DOC = (
    "SELECT id, key, file_path, source, title, format, content_hash, metadata, n_chars "
    "FROM kb_documents WHERE kb_id = %s AND key = %s"
)
EXPORT_CHUNKS = (
    "SELECT text, ord, char_start, char_end, n_tokens, heading_path, page, page_end, kind, "
    "tokens, text_hash, embedding FROM kb_chunks WHERE doc_id = %s ORDER BY ord"
)


def file_rows(kb: int, records: Iterable[Any], now: float) -> list[tuple[Any, ...]]:
    """:data:`FILE_UPSERT` parameters of file records."""
    return [
        (
            kb,
            r.path,
            r.source_id,
            r.size,
            r.mtime_ns,
            r.content_hash,
            r.status,
            r.error,
            r.hint,
            now,
        )
        for r in records
    ]
