"""The shared database: where every stateful part lives when ``database_url`` is set.

Without ``database_url`` Hanlin keeps its state embedded under ``HANLIN_HOME`` (SQLite, tantivy,
usearch) and this package is not used. With ``database_url = "postgresql://…"`` (or
``HANLIN_DATABASE_URL``), :func:`hanlin.db.postgres.database` opens one connection pool per
process and applies the versioned schema (:mod:`hanlin.db.migrations`) before the first use.
"""
