"""``/api/conversations``: the caller's saved chats — list and search, create (or import), read,
rename and change settings, append messages, replace the tail (regenerate, edit and resend),
delete. Scope ``chat``; each API key sees only its own conversations (another key's id is a 404),
and the keyless local server has one owner. The store is :mod:`hanlin.conversations`."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from hanlin.access.auth import Principal
from hanlin.conversations import ChatSettings, ConversationStore, NewMessage, owner_of
from hanlin.conversations.base import MAX_MESSAGES, MAX_TITLE, Text
from hanlin.server.auth import scope
from hanlin.server.jsonbody import JSONRoute

router = APIRouter(prefix="/api/conversations", tags=["conversations"], route_class=JSONRoute)
Chat = Depends(scope("chat"))


class CreateConversation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Text = Field(default="", max_length=MAX_TITLE)
    settings: ChatSettings | None = None
    messages: list[NewMessage] = Field(default_factory=list, max_length=MAX_MESSAGES)
    import_key: Text | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="an id from another history (the browser's): importing it again returns "
        "the conversation already imported",
    )
    created_at: float | None = Field(default=None, description="Unix seconds (imports)")
    updated_at: float | None = Field(default=None, description="Unix seconds (imports)")


class UpdateConversation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Text | None = Field(default=None, max_length=MAX_TITLE)
    settings: ChatSettings | None = Field(
        default=None, description="only the fields given change; null resets one to the default"
    )


class ReplaceMessages(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: int = Field(ge=0, description="the first message index replaced")
    messages: list[NewMessage] = Field(max_length=MAX_MESSAGES)


def conversations(request: Request) -> ConversationStore:
    """FastAPI dependency: the app's conversation store."""
    store: ConversationStore = request.app.state.conversations
    return store


Store = Depends(conversations)


@router.get("", summary="Your conversations, newest first (?q= searches titles and messages)")
async def list_conversations(
    q: str | None = Query(default=None, max_length=200),
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0),
    store: ConversationStore = Store,
    caller: Principal = Chat,
) -> dict[str, Any]:
    owner = owner_of(caller.access)
    page = await asyncio.to_thread(store.list, owner, query=q, limit=limit, offset=offset)
    return page.model_dump()


@router.post("", status_code=201, summary="Start (or import) a conversation")
async def create_conversation(
    body: CreateConversation, store: ConversationStore = Store, caller: Principal = Chat
) -> dict[str, Any]:
    created = await asyncio.to_thread(
        store.create,
        owner_of(caller.access),
        title=body.title,
        settings=body.settings,
        messages=body.messages,
        import_key=body.import_key,
        created_at=body.created_at,
        updated_at=body.updated_at,
    )
    return created.model_dump()


@router.get("/{conversation_id}", summary="A conversation with its messages")
async def get_conversation(
    conversation_id: str, store: ConversationStore = Store, caller: Principal = Chat
) -> dict[str, Any]:
    found = await asyncio.to_thread(store.get, owner_of(caller.access), conversation_id)
    return found.model_dump()


@router.patch("/{conversation_id}", summary="Rename, or change the chat's settings")
async def update_conversation(
    conversation_id: str,
    body: UpdateConversation,
    store: ConversationStore = Store,
    caller: Principal = Chat,
) -> dict[str, Any]:
    owner = owner_of(caller.access)

    def update() -> dict[str, Any]:
        # both changes are checked by reading first, so an unknown id is a 404 either way
        summary = store.get(owner, conversation_id).summary()
        if body.title is not None:
            summary = store.rename(owner, conversation_id, body.title)
        if body.settings is not None:
            changes = body.settings.model_dump(exclude_unset=True)
            summary = store.update_settings(owner, conversation_id, changes)
        return summary.model_dump()

    return await asyncio.to_thread(update)


@router.delete("/{conversation_id}", status_code=204, summary="Delete a conversation")
async def delete_conversation(
    conversation_id: str, store: ConversationStore = Store, caller: Principal = Chat
) -> Response:
    await asyncio.to_thread(store.delete, owner_of(caller.access), conversation_id)
    return Response(status_code=204)


@router.post("/{conversation_id}/messages", status_code=201, summary="Append a message")
async def append_message(
    conversation_id: str,
    body: NewMessage,
    store: ConversationStore = Store,
    caller: Principal = Chat,
) -> dict[str, Any]:
    added = await asyncio.to_thread(store.append, owner_of(caller.access), conversation_id, body)
    return added.model_dump()


@router.put(
    "/{conversation_id}/messages",
    summary="Replace the messages from index `start` on (regenerate; edit and resend)",
)
async def replace_messages(
    conversation_id: str,
    body: ReplaceMessages,
    store: ConversationStore = Store,
    caller: Principal = Chat,
) -> dict[str, Any]:
    summary = await asyncio.to_thread(
        store.replace_from, owner_of(caller.access), conversation_id, body.start, body.messages
    )
    return summary.model_dump()
