"""The PostgreSQL conversation store (``database_url`` set): the SQLite store's tables in the
shared database, so a chat saved through one replica is listed by every other. Each change is
one transaction that first locks the conversation's row (``SELECT … FOR UPDATE``): writers to
one conversation — on any replica — take turns, and message numbers stay gapless."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from hanlin.conversations.base import (
    MAX_MESSAGES,
    ChatSettings,
    Conversation,
    ConversationPage,
    ConversationSummary,
    Message,
    NewMessage,
)
from hanlin.conversations.sqlite import _escape_like, _past, _row, _title, _too_many
from hanlin.errors import InvalidInputError, NotFoundError

if TYPE_CHECKING:
    import psycopg

    from hanlin.db.postgres import Database

_COLUMNS = "c.id, c.title, c.model, c.system_prompt, c.temperature, c.max_tokens, "
_COLUMNS += "c.created_at, c.updated_at, "
_COLUMNS += "(SELECT COUNT(*) FROM conversation_messages m WHERE m.conversation_id = c.id)"
_SETTINGS = ("model", "system_prompt", "temperature", "max_tokens")


class PostgresConversations:
    """Conversations in the database of ``url``. Cheap to construct; connects on first use.
    Safe to share between threads and between processes on any machine."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._db: Database | None = None

    def _database(self) -> Database:
        if self._db is None:
            from hanlin.db.postgres import database

            self._db = database(self.url)
        return self._db

    @contextmanager
    def _write(self) -> Iterator[psycopg.Connection[Any]]:
        """One transaction; PostgreSQL's refusal of a NUL character becomes a 400."""
        import psycopg

        try:
            with self._database().connection() as conn:
                yield conn
        except psycopg.DataError as exc:
            if "NUL" not in str(exc):
                raise
            raise InvalidInputError(
                "the text holds a NUL character (U+0000), which the database cannot store",
                hint="remove the NUL characters and send it again",
            ) from None

    @contextmanager
    def _read(self) -> Iterator[psycopg.Connection[Any]]:
        """A consistent snapshot for reads that take several statements."""
        with self._database().connection() as conn:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield conn

    def close(self) -> None:
        """Nothing to close: the process's pool outlives one store (closed at exit)."""

    # --- reads ---------------------------------------------------------------------------

    def get(self, owner: str, conversation_id: str) -> Conversation:
        with self._read() as conn:
            summary = _summary(conn, owner, conversation_id)
            rows = conn.execute(
                "SELECT position, role, content, meta, created_at FROM conversation_messages "
                "WHERE conversation_id = %s ORDER BY position",
                (conversation_id,),
            ).fetchall()
        messages = [
            Message(index=i, role=role, content=content, meta=json.loads(meta), created_at=at)
            for i, role, content, meta, at in rows
        ]
        return Conversation(**summary.model_dump(), messages=messages)

    # --- changes -------------------------------------------------------------------------

    def create(
        self,
        owner: str,
        *,
        title: str = "",
        settings: ChatSettings | None = None,
        messages: list[NewMessage] | None = None,
        import_key: str | None = None,
        created_at: float | None = None,
        updated_at: float | None = None,
    ) -> Conversation:
        title = _title(title)
        chosen = settings or ChatSettings()
        messages = messages or []
        if len(messages) > MAX_MESSAGES:
            raise _too_many(len(messages))
        now = time.time()
        created = _past(created_at if created_at is not None else updated_at, now)
        updated = max(_past(updated_at, now), created)
        new_id = f"c_{secrets.token_hex(8)}"
        with self._write() as conn:
            # two replicas importing the same browser chat at once: one row, the other reads it
            inserted = conn.execute(
                "INSERT INTO conversations (id, owner, title, model, system_prompt, "
                "temperature, max_tokens, import_key, created_at, updated_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (owner, import_key) DO NOTHING RETURNING id",
                (
                    new_id,
                    owner,
                    title,
                    chosen.model,
                    chosen.system_prompt,
                    chosen.temperature,
                    chosen.max_tokens,
                    import_key,
                    created,
                    updated,
                ),
            ).fetchone()
            if inserted is None:
                found = conn.execute(
                    "SELECT id FROM conversations WHERE owner = %s AND import_key = %s",
                    (owner, import_key),
                ).fetchone()
                assert found is not None  # the conflicting row
                new_id = found[0]
            else:
                _insert(conn, new_id, 0, messages, created)
        return self.get(owner, new_id)

    def rename(self, owner: str, conversation_id: str, title: str) -> ConversationSummary:
        title = _title(title)
        with self._write() as conn:
            _lock(conn, owner, conversation_id)
            conn.execute(
                "UPDATE conversations SET title = %s WHERE id = %s", (title, conversation_id)
            )
            return _summary(conn, owner, conversation_id)

    def update_settings(
        self, owner: str, conversation_id: str, changes: dict[str, Any]
    ) -> ConversationSummary:
        with self._write() as conn:
            _lock(conn, owner, conversation_id)
            current = _summary(conn, owner, conversation_id).settings
            try:
                merged = ChatSettings.model_validate(current.model_dump() | changes)
            except ValidationError as exc:
                err = exc.errors()[0]
                where = ".".join(str(p) for p in err["loc"])
                raise InvalidInputError(
                    f"invalid setting {where}: {err['msg']}",
                    hint="settings are model, system_prompt, temperature (0–2), max_tokens (≥ 1)",
                    param=f"settings.{where}",
                ) from None
            conn.execute(
                "UPDATE conversations SET model = %s, system_prompt = %s, temperature = %s, "
                "max_tokens = %s WHERE id = %s",
                (*(getattr(merged, k) for k in _SETTINGS), conversation_id),
            )
            return _summary(conn, owner, conversation_id)

    def append(self, owner: str, conversation_id: str, message: NewMessage) -> Message:
        now = time.time()
        with self._write() as conn:
            _lock(conn, owner, conversation_id)
            count = _summary(conn, owner, conversation_id).message_count
            _insert(conn, conversation_id, count, [message], now)
            _touch(conn, conversation_id, now)
        return Message(**message.model_dump(), index=count, created_at=now)

    def replace_from(
        self, owner: str, conversation_id: str, start: int, messages: list[NewMessage]
    ) -> ConversationSummary:
        now = time.time()
        with self._write() as conn:
            _lock(conn, owner, conversation_id)
            count = _summary(conn, owner, conversation_id).message_count
            if not 0 <= start <= count:
                raise InvalidInputError(
                    f"no message {start} to replace from: the conversation has {count}",
                    hint=f"give an index from 0 to {count}",
                    param="start",
                )
            conn.execute(
                "DELETE FROM conversation_messages WHERE conversation_id = %s AND position >= %s",
                (conversation_id, start),
            )
            _insert(conn, conversation_id, start, messages, now)
            _touch(conn, conversation_id, now)
            return _summary(conn, owner, conversation_id)

    def delete(self, owner: str, conversation_id: str) -> None:
        with self._write() as conn:
            _lock(conn, owner, conversation_id)
            conn.execute("DELETE FROM conversations WHERE id = %s", (conversation_id,))

    # last: inside the class body the name ``list`` is this method, not the builtin
    def list(
        self, owner: str, *, query: str | None = None, limit: int = 50, offset: int = 0
    ) -> ConversationPage:
        where = "c.owner = %s"
        args: tuple[Any, ...] = (owner,)
        if query:
            pattern = "%" + _escape_like(query.lower()) + "%"
            where += (
                " AND (lower(c.title) LIKE %s ESCAPE '\\' OR EXISTS (SELECT 1 FROM "
                "conversation_messages m WHERE m.conversation_id = c.id "
                "AND lower(m.content) LIKE %s ESCAPE '\\'))"
            )
            args += (pattern, pattern)
        with self._read() as conn:
            total = conn.execute(f"SELECT COUNT(*) FROM conversations c WHERE {where}", args)
            count = total.fetchone()
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM conversations c WHERE {where} "
                "ORDER BY c.updated_at DESC, c.id LIMIT %s OFFSET %s",
                (*args, max(0, limit), max(0, offset)),
            ).fetchall()
        return ConversationPage(data=[_row(r) for r in rows], total=count[0] if count else 0)


def _not_found(conversation_id: str) -> NotFoundError:
    return NotFoundError(
        f"no conversation '{conversation_id}'", hint="list yours with GET /api/conversations"
    )


def _lock(conn: psycopg.Connection[Any], owner: str, conversation_id: str) -> None:
    """Lock the owner's conversation for this transaction, or :class:`NotFoundError` — also
    for another owner's id."""
    row = conn.execute(
        "SELECT 1 FROM conversations WHERE id = %s AND owner = %s FOR UPDATE",
        (conversation_id, owner),
    ).fetchone()
    if row is None:
        raise _not_found(conversation_id)


def _summary(
    conn: psycopg.Connection[Any], owner: str, conversation_id: str
) -> ConversationSummary:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM conversations c WHERE c.id = %s AND c.owner = %s",
        (conversation_id, owner),
    ).fetchone()
    if row is None:
        raise _not_found(conversation_id)
    return _row(row)


def _insert(
    conn: psycopg.Connection[Any], cid: str, start: int, messages: list[NewMessage], now: float
) -> None:
    if start + len(messages) > MAX_MESSAGES:
        raise _too_many(start + len(messages))
    if not messages:
        return
    rows = [
        (cid, start + i, m.role, m.content, json.dumps(m.meta, ensure_ascii=False), now)
        for i, m in enumerate(messages)
    ]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO conversation_messages (conversation_id, position, role, content, meta, "
            "created_at) VALUES (%s, %s, %s, %s, %s, %s)",
            rows,
        )


def _touch(conn: psycopg.Connection[Any], cid: str, now: float) -> None:
    conn.execute("UPDATE conversations SET updated_at = %s WHERE id = %s", (now, cid))
