"""The SQLite conversation store: ``HANLIN_HOME/conversations.sqlite`` in WAL mode, one
transaction per change, the schema as named migrations. The SQL stays plain (no JSON functions,
no ``RETURNING``, no FTS) so the PostgreSQL store can share its shape."""

from __future__ import annotations

import json
import math
import secrets
import sqlite3
import time
from typing import Any

from pydantic import ValidationError

from hanlin.config import Settings
from hanlin.conversations.base import (
    MAX_MESSAGES,
    MAX_TITLE,
    ChatSettings,
    Conversation,
    ConversationPage,
    ConversationSummary,
    Message,
    NewMessage,
)
from hanlin.errors import InvalidInputError, NotFoundError
from hanlin.sqlite_migrations import SqliteFile

FILENAME = "conversations.sqlite"

MIGRATIONS: list[tuple[str, list[str]]] = [
    (
        "0001_initial",
        [
            """CREATE TABLE conversations (
                id TEXT PRIMARY KEY, owner TEXT NOT NULL, title TEXT NOT NULL,
                model TEXT, system_prompt TEXT, temperature REAL, max_tokens INTEGER,
                import_key TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL
            )""",
            "CREATE INDEX conversations_owner ON conversations(owner, updated_at)",
            # NULL keys never collide (SQLite and PostgreSQL alike): only imports are unique
            "CREATE UNIQUE INDEX conversations_import ON conversations(owner, import_key)",
            """CREATE TABLE messages (
                conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
                position INTEGER NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL,
                meta TEXT NOT NULL, created_at REAL NOT NULL,
                PRIMARY KEY (conversation_id, position)
            )""",
        ],
    ),
]

_COLUMNS = "c.id, c.title, c.model, c.system_prompt, c.temperature, c.max_tokens, "
_COLUMNS += "c.created_at, c.updated_at, "
_COLUMNS += "(SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id)"
_SETTINGS = ("model", "system_prompt", "temperature", "max_tokens")


class SqliteConversations(SqliteFile):
    """Conversations in one SQLite file. Cheap to construct; the file opens on first use.
    Safe to share between threads (one connection behind a lock) and between processes
    (WAL, a busy timeout, ``BEGIN IMMEDIATE`` for every change)."""

    migrations = MIGRATIONS
    synchronous = "FULL"  # a sent message survives a power cut

    @classmethod
    def from_settings(cls, settings: Settings) -> SqliteConversations:
        return cls(settings.home / FILENAME)

    # --- plumbing ------------------------------------------------------------------------

    # --- reads ---------------------------------------------------------------------------

    def get(self, owner: str, conversation_id: str) -> Conversation:
        with self._read() as conn:
            summary = _summary(conn, owner, conversation_id)
            rows = conn.execute(
                "SELECT position, role, content, meta, created_at FROM messages "
                "WHERE conversation_id = ? ORDER BY position",
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
            found = None
            if import_key is not None:
                found = conn.execute(
                    "SELECT id FROM conversations WHERE owner = ? AND import_key = ?",
                    (owner, import_key),
                ).fetchone()
            if found is not None:
                new_id = found[0]
            else:
                conn.execute(
                    "INSERT INTO conversations (id, owner, title, model, system_prompt, "
                    "temperature, max_tokens, import_key, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                )
                _insert(conn, new_id, 0, messages, created)
        return self.get(owner, new_id)

    def rename(self, owner: str, conversation_id: str, title: str) -> ConversationSummary:
        title = _title(title)
        with self._write() as conn:
            _summary(conn, owner, conversation_id)
            conn.execute(
                "UPDATE conversations SET title = ? WHERE id = ?", (title, conversation_id)
            )
            return _summary(conn, owner, conversation_id)

    def update_settings(
        self, owner: str, conversation_id: str, changes: dict[str, Any]
    ) -> ConversationSummary:
        with self._write() as conn:
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
                "UPDATE conversations SET model = ?, system_prompt = ?, temperature = ?, "
                "max_tokens = ? WHERE id = ?",
                (*(getattr(merged, k) for k in _SETTINGS), conversation_id),
            )
            return _summary(conn, owner, conversation_id)

    def append(self, owner: str, conversation_id: str, message: NewMessage) -> Message:
        now = time.time()
        with self._write() as conn:
            count = _summary(conn, owner, conversation_id).message_count
            _insert(conn, conversation_id, count, [message], now)
            _touch(conn, conversation_id, now)
        return Message(**message.model_dump(), index=count, created_at=now)

    def replace_from(
        self, owner: str, conversation_id: str, start: int, messages: list[NewMessage]
    ) -> ConversationSummary:
        now = time.time()
        with self._write() as conn:
            count = _summary(conn, owner, conversation_id).message_count
            if not 0 <= start <= count:
                raise InvalidInputError(
                    f"no message {start} to replace from: the conversation has {count}",
                    hint=f"give an index from 0 to {count}",
                    param="start",
                )
            conn.execute(
                "DELETE FROM messages WHERE conversation_id = ? AND position >= ?",
                (conversation_id, start),
            )
            _insert(conn, conversation_id, start, messages, now)
            _touch(conn, conversation_id, now)
            return _summary(conn, owner, conversation_id)

    def delete(self, owner: str, conversation_id: str) -> None:
        with self._write() as conn:
            _summary(conn, owner, conversation_id)
            conn.execute("DELETE FROM messages WHERE conversation_id = ?", (conversation_id,))
            conn.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    # last: inside the class body the name ``list`` is this method, not the builtin
    def list(
        self, owner: str, *, query: str | None = None, limit: int = 50, offset: int = 0
    ) -> ConversationPage:
        where = "c.owner = ?"
        args: tuple[Any, ...] = (owner,)
        if query:
            pattern = "%" + _escape_like(query.lower()) + "%"
            where += (
                " AND (lower(c.title) LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM messages m "
                "WHERE m.conversation_id = c.id AND lower(m.content) LIKE ? ESCAPE '\\'))"
            )
            args += (pattern, pattern)
        with self._read() as conn:
            total = conn.execute(
                f"SELECT COUNT(*) FROM conversations c WHERE {where}", args
            ).fetchone()[0]
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM conversations c WHERE {where} "
                "ORDER BY c.updated_at DESC, c.id LIMIT ? OFFSET ?",
                (*args, max(0, limit), max(0, offset)),
            ).fetchall()
        return ConversationPage(data=[_row(r) for r in rows], total=total)


def _row(row: tuple[Any, ...]) -> ConversationSummary:
    cid, title, model, system_prompt, temperature, max_tokens, created, updated, count = row
    settings = ChatSettings.model_construct(
        model=model, system_prompt=system_prompt, temperature=temperature, max_tokens=max_tokens
    )
    return ConversationSummary(
        id=cid,
        title=title,
        settings=settings,
        message_count=count,
        created_at=created,
        updated_at=updated,
    )


def _summary(conn: sqlite3.Connection, owner: str, conversation_id: str) -> ConversationSummary:
    """The owner's conversation, or :class:`NotFoundError` — also for another owner's id."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM conversations c WHERE c.id = ? AND c.owner = ?",
        (conversation_id, owner),
    ).fetchone()
    if row is None:
        raise NotFoundError(
            f"no conversation '{conversation_id}'",
            hint="list yours with GET /api/conversations",
        )
    return _row(row)


def _insert(
    conn: sqlite3.Connection, cid: str, start: int, messages: list[NewMessage], now: float
) -> None:
    if start + len(messages) > MAX_MESSAGES:
        raise _too_many(start + len(messages))
    rows = [
        (cid, start + i, m.role, m.content, json.dumps(m.meta, ensure_ascii=False), now)
        for i, m in enumerate(messages)
    ]
    conn.executemany(
        "INSERT INTO messages (conversation_id, position, role, content, meta, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )


def _touch(conn: sqlite3.Connection, cid: str, now: float) -> None:
    conn.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (now, cid))


def _title(title: str) -> str:
    title = " ".join(title.split())  # one line: the sidebar shows it on one
    if len(title) > MAX_TITLE:
        raise InvalidInputError(
            f"a title of {len(title)} characters is too long",
            hint=f"use at most {MAX_TITLE}",
            param="title",
        )
    return title


def _past(at: float | None, now: float) -> float:
    """A client's timestamp, kept only when it is a real moment not in the future."""
    return at if at is not None and math.isfinite(at) and 0 < at <= now else now


def _too_many(n: int) -> InvalidInputError:
    return InvalidInputError(
        f"a conversation holds at most {MAX_MESSAGES} messages ({n} asked for)",
        hint="start a new conversation",
        param="messages",
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
