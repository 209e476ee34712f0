"""Conversations kept on the server, per owner (an API key, or the local user), so every
browser and device sees the same chats: the protocol and types in ``base.py``, the SQLite store
in ``sqlite.py``, the PostgreSQL one (``database_url`` set, shared by every replica) in
``postgres.py``. :func:`open_conversations` is the one way surfaces open the store."""

from __future__ import annotations

from hanlin.config import Settings
from hanlin.conversations.base import (
    LOCAL_OWNER,
    ChatSettings,
    Conversation,
    ConversationPage,
    ConversationStore,
    ConversationSummary,
    Message,
    NewMessage,
    owner_of,
)
from hanlin.conversations.sqlite import SqliteConversations

__all__ = [
    "LOCAL_OWNER",
    "ChatSettings",
    "Conversation",
    "ConversationPage",
    "ConversationStore",
    "ConversationSummary",
    "Message",
    "NewMessage",
    "SqliteConversations",
    "open_conversations",
    "owner_of",
]


def open_conversations(settings: Settings) -> ConversationStore:
    """The conversation store of these settings: the app directory's SQLite file, or the
    database of ``database_url`` (cheap: opens on first use)."""
    if settings.database_url:
        from hanlin.conversations.postgres import PostgresConversations

        return PostgresConversations(settings.database_url)
    return SqliteConversations.from_settings(settings)
