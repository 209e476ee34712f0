"""Opt-in response cache in ``HANLIN_HOME/cache/responses.db``.

The key is a SHA-256 of the normalized request — deployment, messages in wire form and every
option that changes the answer, serialized with sorted keys — so the same question with options
in another order hits, and a different temperature misses. Entries expire after a TTL.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hanlin.models.providers.openai_compat import message_dict
from hanlin.models.types import ChatOptions, ChatResponse, Message, ToolCall, Usage

_IGNORED = {"timeout", "user"}  # do not change the answer


def cache_key(deployment: str, messages: Sequence[Message], options: ChatOptions) -> str:
    opts = options.model_dump(exclude_none=True, exclude=_IGNORED)
    blob = json.dumps(
        {"d": deployment, "m": [message_dict(m) for m in messages], "o": opts},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class ResponseCache:
    """A small SQLite key → response store, safe across threads and processes."""

    def __init__(self, path: Path, ttl_days: float = 30.0) -> None:
        self.path = path
        self.ttl = ttl_days * 86400
        self._local = threading.local()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS responses "
                "(key TEXT PRIMARY KEY, ts REAL NOT NULL, body TEXT NOT NULL)"
            )
            self._local.conn = conn
        return conn

    def get(self, key: str) -> ChatResponse | None:
        row = (
            self._conn().execute("SELECT ts, body FROM responses WHERE key = ?", (key,)).fetchone()
        )
        if row is None or row[0] < time.time() - self.ttl:
            return None
        data: dict[str, Any] = json.loads(row[1])
        return ChatResponse(
            text=data["text"],
            model=data["model"],
            tool_calls=[ToolCall(**c) for c in data["tool_calls"]],
            usage=Usage(*data["usage"]),
            finish_reason=data["finish_reason"],
            served_by=data["served_by"],
            cached=True,
        )

    def put(self, key: str, response: ChatResponse) -> None:
        u = response.usage
        body = json.dumps(
            {
                "text": response.text,
                "model": response.model,
                "tool_calls": [
                    {"id": c.id, "name": c.name, "arguments": c.arguments}
                    for c in response.tool_calls
                ],
                "usage": [u.prompt_tokens, u.completion_tokens, u.cached_tokens],
                "finish_reason": response.finish_reason,
                "served_by": response.served_by,
            },
            ensure_ascii=False,
        )
        conn = self._conn()
        with conn:
            conn.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?)", (key, time.time(), body)
            )

    def clear(self) -> int:
        conn = self._conn()
        with conn:
            return conn.execute("DELETE FROM responses").rowcount
