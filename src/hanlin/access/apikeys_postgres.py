"""API keys in PostgreSQL (``database_url`` set): one table shared by every replica, so a key
created or revoked by ``hanlin apikeys`` on any machine applies to all of them.

Verifying a key is on the hot path of every request, so each process keeps a snapshot of the
active keys and re-reads it when it is older than :data:`REFRESH_SECONDS` (one ``SELECT``
of a small table): a revocation made elsewhere is refused
here within that delay. A change made through this process applies here at once. When the
database is unreachable, the last snapshot keeps serving (no revocation can be written then
either) and the refresh is retried on the next request after the delay.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from hanlin.access.apikeys import (
    PREFIX,
    APIKey,
    ambiguous,
    matching,
    name_taken,
    new_key,
    no_such_key,
)
from hanlin.errors import DatabaseUnavailableError

if TYPE_CHECKING:
    from hanlin.db.postgres import Database

log = logging.getLogger(__name__)

#: the longest a revocation made by another process goes unseen here, in seconds
REFRESH_SECONDS = 1.0

_COLUMNS = "id, name, scopes, kbs, salt, hash, created_at, revoked_at, extra"


def _record(row: tuple[Any, ...]) -> APIKey:
    kid, name, scopes, kbs, salt, digest, created, revoked, extra = row
    return APIKey(
        id=kid,
        name=name,
        scopes=list(scopes),
        kbs=list(kbs),
        salt=salt,
        hash=digest,
        created_at=created,
        revoked_at=revoked,
        extra=dict(extra or {}),
    )


class PostgresAPIKeys:
    """The ``api_keys`` table of one database. Cheap to construct; connects on first use."""

    def __init__(self, url: str, *, refresh: float = REFRESH_SECONDS) -> None:
        self.url = url
        self.refresh = refresh
        self._db: Database | None = None
        self._lock = threading.Lock()
        self._active: list[APIKey] = []
        self._loaded_at: float | None = None

    def _database(self) -> Database:
        if self._db is None:
            from hanlin.db.postgres import database

            self._db = database(self.url)
        return self._db

    def _snapshot(self) -> list[APIKey]:
        """The active keys, re-read when the copy is older than :attr:`refresh`."""
        with self._lock:
            now = time.monotonic()
            if self._loaded_at is not None and now - self._loaded_at < self.refresh:
                return self._active
            try:
                with self._database().connection() as conn:
                    rows = conn.execute(
                        f"SELECT {_COLUMNS} FROM api_keys WHERE revoked_at IS NULL ORDER BY id"
                    ).fetchall()
            except DatabaseUnavailableError:
                if self._loaded_at is None:
                    raise
                log.warning("API keys: the database is unavailable; using the last copy")
                self._loaded_at = now  # retry after another refresh interval
                return self._active
            self._active = [_record(r) for r in rows]
            self._loaded_at = now
            return self._active

    def _changed(self) -> None:
        with self._lock:
            self._loaded_at = None

    # -- APIKeys ---------------------------------------------------------------------------
    def create(
        self, scopes: Iterable[str], *, kbs: Iterable[str] = (), name: str = ""
    ) -> tuple[APIKey, str]:
        """Make a key; returns the record and the key itself, which is not stored anywhere."""
        record, plain = new_key(scopes, kbs=kbs, name=name)
        import psycopg

        try:
            with self._database().connection() as conn:
                conn.execute(
                    f"INSERT INTO api_keys ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, "
                    "%s, %s)",
                    (
                        record.id,
                        record.name,
                        record.scopes,
                        record.kbs,
                        record.salt,
                        record.hash,
                        record.created_at,
                        None,
                        json.dumps(record.extra),
                    ),
                )
        except psycopg.errors.UniqueViolation:
            raise name_taken(name) from None  # the partial unique index on active names
        self._changed()
        return record, plain

    def records(self) -> list[APIKey]:
        with self._database().connection() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, id"
            ).fetchall()
        return [_record(r) for r in rows]

    def revoke(self, ref: str) -> APIKey:
        """Revoke by id or by name."""
        with self._database().connection() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM api_keys WHERE revoked_at IS NULL "
                "AND (id = %s OR name = %s) FOR UPDATE",
                (ref, ref),
            ).fetchall()
            if not rows:
                raise no_such_key(ref)
            if len(rows) > 1:
                raise ambiguous(ref, len(rows))
            record = _record(rows[0])
            record.revoked_at = time.time()
            conn.execute(
                "UPDATE api_keys SET revoked_at = %s WHERE id = %s", (record.revoked_at, record.id)
            )
        self._changed()
        return record

    def verify(self, plain: str) -> APIKey | None:
        """The active key this is, or None (from a copy at most :attr:`refresh` s old)."""
        if not plain.startswith(PREFIX):
            return None
        return matching(self._snapshot(), plain)

    def has_active(self) -> bool:
        self._changed()
        return bool(self._snapshot())
