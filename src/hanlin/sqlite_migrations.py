"""Named migrations for the small SQLite files in the app directory (conversations, traces):
each applied once, in its own ``BEGIN IMMEDIATE`` transaction, recorded in a ``migrations``
table, so two processes opening one file at once apply each migration once."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence


def apply_migrations(
    conn: sqlite3.Connection, migrations: Sequence[tuple[str, Sequence[str]]]
) -> None:
    """Apply the ``(name, statements)`` not yet recorded on an autocommit connection."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
    )
    done = {row[0] for row in conn.execute("SELECT name FROM migrations")}
    for name, statements in migrations:
        if name in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("SELECT 1 FROM migrations WHERE name = ?", (name,)).fetchone():
                conn.execute("ROLLBACK")  # another process applied it meanwhile
                continue
            for statement in statements:
                conn.execute(statement)
            conn.execute("INSERT INTO migrations VALUES (?, ?)", (name, time.time()))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
