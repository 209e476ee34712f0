"""SQLite schema of a knowledge base, as named migrations recorded in a table."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any error (autocommit connections)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001_initial",
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE sources (
            id INTEGER PRIMARY KEY, uri TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
            options TEXT NOT NULL DEFAULT '{}', added_at REAL NOT NULL
        );
        CREATE TABLE files (
            path TEXT PRIMARY KEY, source_id INTEGER NOT NULL, size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL, content_hash TEXT, status TEXT NOT NULL,
            error TEXT, hint TEXT, updated_at REAL NOT NULL
        );
        CREATE INDEX files_source ON files(source_id);
        CREATE TABLE documents (
            id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, file_path TEXT, source TEXT NOT NULL,
            title TEXT NOT NULL, format TEXT NOT NULL, content_hash TEXT NOT NULL,
            metadata TEXT NOT NULL DEFAULT '{}', n_chars INTEGER NOT NULL,
            created_at REAL NOT NULL, updated_at REAL NOT NULL
        );
        CREATE INDEX documents_file ON documents(file_path);
        CREATE TABLE chunks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            ord INTEGER NOT NULL, text TEXT NOT NULL, tokens TEXT NOT NULL,
            text_hash TEXT NOT NULL, heading_path TEXT NOT NULL DEFAULT '[]',
            page INTEGER, page_end INTEGER, char_start INTEGER NOT NULL,
            char_end INTEGER NOT NULL, n_tokens INTEGER NOT NULL, kind TEXT NOT NULL,
            embedding BLOB
        );
        CREATE INDEX chunks_doc ON chunks(doc_id);
        CREATE INDEX chunks_text_hash ON chunks(text_hash);
        -- the change log the derived indexes catch up from
        CREATE TABLE changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, chunk_id INTEGER NOT NULL);
        CREATE TRIGGER chunks_ai AFTER INSERT ON chunks
            BEGIN INSERT INTO changes(chunk_id) VALUES (new.id); END;
        CREATE TRIGGER chunks_ad AFTER DELETE ON chunks
            BEGIN INSERT INTO changes(chunk_id) VALUES (old.id); END;
        CREATE TRIGGER chunks_au AFTER UPDATE OF embedding, tokens ON chunks
            BEGIN INSERT INTO changes(chunk_id) VALUES (new.id); END;
        """,
    ),
    (
        "0002_chunk_vectors_next",
        """
        -- vectors of a re-embed in progress, beside the live ones until the swap
        CREATE TABLE chunk_vectors_next (
            chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,
            space TEXT NOT NULL, embedding BLOB NOT NULL
        );
        """,
    ),
]


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply pending migrations in order; returns the names applied."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
    )
    done = {row[0] for row in conn.execute("SELECT name FROM migrations")}
    applied = []
    for name, sql in MIGRATIONS:
        if name in done:
            continue
        with transaction(conn):
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute("INSERT INTO migrations VALUES (?, ?)", (name, time.time()))
        applied.append(name)
    return applied


def _statements(sql: str) -> list[str]:
    """Split a script into statements, keeping trigger bodies (BEGIN … END;) whole."""
    out: list[str] = []
    buf: list[str] = []
    in_trigger = False
    for line in sql.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("--"):
            continue
        buf.append(line)
        upper = stripped.upper()
        if upper.startswith("CREATE TRIGGER"):
            in_trigger = True
        if (in_trigger and upper.endswith("END;")) or (not in_trigger and stripped.endswith(";")):
            out.append("\n".join(buf))
            buf = []
            in_trigger = False
    if buf:
        out.append("\n".join(buf))
    return out
