"""SQL helpers for the SQLite store: filter compilation and row conversion."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

import numpy as np

from hanlin.errors import InvalidInputError
from hanlin.knowledge.filters import Filter
from hanlin.knowledge.stores.base import DocumentRecord, StoredChunk, Vector

_COLUMNS = {
    "source": "d.source",
    "format": "d.format",
    "title": "d.title",
    "doc": "d.key",
    "page": "c.page",
}
_SQL_OPS = {"eq": "=", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def filter_sql(flt: Filter) -> tuple[str, list[Any]]:
    """``WHERE`` clause (over chunks ``c`` joined with documents ``d``) and its parameters."""
    clauses: list[str] = []
    params: list[Any] = []
    for cond in flt.conditions:
        if cond.key in _COLUMNS:
            expr = _COLUMNS[cond.key]
        else:
            path = "$" + "".join(f'."{part}"' for part in cond.key.split("."))
            expr = "json_extract(d.metadata, ?)"
            params.append(path)
        if cond.op == "in":
            values = list(cond.value)
            if not values:
                clauses.append("0")
                continue
            clauses.append(f"{expr} IN ({', '.join('?' * len(values))})")
            params.extend(values)
        else:
            clauses.append(f"{expr} {_SQL_OPS[cond.op]} ?")
            params.append(cond.value)
    return " AND ".join(clauses) or "1", params


def to_blob(vector: Vector) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def from_blob(blob: bytes) -> Vector:
    return np.frombuffer(blob, dtype=np.float32)


CHUNK_SELECT = """
    SELECT c.id, d.key, d.source, d.title, c.text, c.ord, c.heading_path, c.page, c.page_end,
           c.char_start, c.char_end, c.kind, d.metadata
    FROM chunks c JOIN documents d ON d.id = c.doc_id
"""


def row_to_chunk(row: tuple[Any, ...]) -> StoredChunk:
    return StoredChunk(
        id=row[0],
        doc_key=row[1],
        source=row[2],
        title=row[3],
        text=row[4],
        ord=row[5],
        heading_path=json.loads(row[6]),
        page=row[7],
        page_end=row[8],
        char_start=row[9],
        char_end=row[10],
        kind=row[11],
        metadata=json.loads(row[12]),
    )


DOC_SELECT = """
    SELECT d.id, d.key, d.source, d.title, d.format, d.content_hash,
           (SELECT COUNT(*) FROM chunks c WHERE c.doc_id = d.id), d.n_chars, d.metadata,
           d.updated_at
    FROM documents d
"""


def row_to_document(row: tuple[Any, ...]) -> DocumentRecord:
    return DocumentRecord(
        id=row[0],
        key=row[1],
        source=row[2],
        title=row[3],
        format=row[4],
        content_hash=row[5],
        n_chunks=row[6],
        n_chars=row[7],
        metadata=json.loads(row[8]),
        updated_at=row[9],
    )


#: chunks with no vector staged for an embedding space yet, with the text ingest embeds
UNSTAGED_CHUNKS = (
    "SELECT c.id, d.title, c.text, c.heading_path FROM chunks c "
    "JOIN documents d ON d.id = c.doc_id LEFT JOIN chunk_vectors_next s "
    "ON s.chunk_id = c.id AND s.space = ? WHERE s.chunk_id IS NULL ORDER BY c.id LIMIT ?"
)


def delete_source(conn: sqlite3.Connection, uri: str) -> int:
    """Inside a transaction: the source ``uri``, its files and their documents (their chunks
    cascade) go; returns the number of documents deleted."""
    row = conn.execute("SELECT id FROM sources WHERE uri = ?", (uri,)).fetchone()
    if row is None:
        return 0
    n = conn.execute(
        "DELETE FROM documents WHERE file_path IN (SELECT path FROM files WHERE source_id = ?)",
        (row[0],),
    ).rowcount
    conn.execute("DELETE FROM files WHERE source_id = ?", (row[0],))
    conn.execute("DELETE FROM sources WHERE id = ?", (row[0],))
    return int(n)


def swap_in_staged(conn: sqlite3.Connection, space: str, meta: Mapping[str, str]) -> None:
    """Inside a transaction: the staged vectors of ``space`` become every chunk's vector and
    ``meta`` is recorded; refused (nothing changed) unless every chunk has one staged."""
    missing = conn.execute(
        "SELECT COUNT(*) FROM chunks c LEFT JOIN chunk_vectors_next s "
        "ON s.chunk_id = c.id AND s.space = ? WHERE s.chunk_id IS NULL",
        (space,),
    ).fetchone()[0]
    if missing:
        raise InvalidInputError(
            f"{missing} chunks have no vector staged for {space}; nothing was swapped",
            hint="stage a vector for every chunk first (`hanlin kb reembed` does)",
        )
    conn.execute(
        "UPDATE chunks SET embedding = (SELECT embedding FROM chunk_vectors_next s "
        "WHERE s.chunk_id = chunks.id)"
    )
    conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", list(meta.items()))
    conn.execute("DELETE FROM chunk_vectors_next")


#: a stored document and its chunks as they were written (for :meth:`Store.export_documents`)
EXPORT_DOC = (
    "SELECT id, key, file_path, source, title, format, content_hash, metadata, n_chars "
    "FROM documents"
)
EXPORT_CHUNKS = (
    "SELECT text, ord, char_start, char_end, n_tokens, heading_path, page, page_end, kind, "
    "tokens, text_hash, embedding FROM chunks WHERE doc_id = ? ORDER BY ord"
)
