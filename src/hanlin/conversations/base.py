"""What a stored conversation is, and the small protocol every conversation store implements
(SQLite today, PostgreSQL next), so the server and the web UI never depend on one backend.

Every method takes the ``owner`` — an API key's id, or :data:`LOCAL_OWNER` for the keyless
local server — and only ever sees that owner's conversations: another owner's id is "not
found", the same as an id that never existed.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, Protocol, runtime_checkable

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from hanlin.access.caller import Access

#: the owner of every conversation on a server that does not require keys (and of the CLI's)
LOCAL_OWNER = "local"
MAX_TITLE = 200
MAX_CONTENT = 400_000
#: a message's metadata (citations, answer mode, usage …) as UTF-8 JSON, in bytes
MAX_META = 200_000
MAX_SYSTEM_PROMPT = 20_000
MAX_MESSAGES = 2_000


def owner_of(access: Access) -> str:
    """Whose conversations a caller sees: its API key's id, else the local user's."""
    return access.user or LOCAL_OWNER


def _encodable(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("the text holds a lone surrogate, which is not Unicode") from None
    return text


#: a string that can be stored and sent back as UTF-8 (JSON admits lone surrogates)
Text = Annotated[str, AfterValidator(_encodable)]


class ChatSettings(BaseModel):
    """A conversation's own settings; ``None`` means "the server's default"."""

    model_config = ConfigDict(extra="forbid")

    model: Text | None = Field(default=None, max_length=300)
    system_prompt: Text | None = Field(default=None, max_length=MAX_SYSTEM_PROMPT)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)


class NewMessage(BaseModel):
    """A message to store. ``meta`` holds what the UI shows beside the text (citations, the
    answer's mode, an error, "stopped"); it is kept as given, never interpreted."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: Text = Field(max_length=MAX_CONTENT)
    meta: dict[str, Any] = Field(default_factory=dict)

    @field_validator("meta")
    @classmethod
    def _storable(cls, meta: dict[str, Any]) -> dict[str, Any]:
        try:
            size = len(json.dumps(meta, ensure_ascii=False, allow_nan=False).encode("utf-8"))
        except (ValueError, TypeError):
            raise ValueError("meta must be plain JSON: no NaN, no lone surrogates") from None
        if size > MAX_META:
            raise ValueError(f"meta is {size:,} bytes of JSON; at most {MAX_META:,} are kept")
        return meta


class Message(NewMessage):
    index: int
    created_at: float


class ConversationSummary(BaseModel):
    """A conversation without its messages (what a list returns)."""

    id: str
    title: str
    settings: ChatSettings
    message_count: int
    created_at: float
    updated_at: float


class Conversation(ConversationSummary):
    messages: list[Message]

    def summary(self) -> ConversationSummary:
        return ConversationSummary(**self.model_dump(exclude={"messages"}))


class ConversationPage(BaseModel):
    """One page of an owner's conversations, newest first; ``total`` counts every match."""

    data: list[ConversationSummary]
    total: int


@runtime_checkable
class ConversationStore(Protocol):
    """Conversations and their messages, per owner.

    Every change is one transaction: a crash leaves the conversation as it was before the call
    or as it is after it. Unknown ids (and other owners' ids) raise
    :class:`~hanlin.errors.NotFoundError`; a bad index or a conversation past
    :data:`MAX_MESSAGES` raises :class:`~hanlin.errors.InvalidInputError`.
    """

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
        """A new conversation. With ``import_key`` (an id from another store, e.g. a browser's
        local history), a conversation this owner already imported under that key is returned
        unchanged instead, so an interrupted import can simply be run again."""
        ...

    def get(self, owner: str, conversation_id: str) -> Conversation: ...

    def rename(self, owner: str, conversation_id: str, title: str) -> ConversationSummary: ...

    def update_settings(
        self, owner: str, conversation_id: str, changes: dict[str, Any]
    ) -> ConversationSummary:
        """Change some settings (``{"temperature": 0.2}``; ``None`` resets one to the default),
        validated as :class:`ChatSettings`."""
        ...

    def append(self, owner: str, conversation_id: str, message: NewMessage) -> Message: ...

    def replace_from(
        self, owner: str, conversation_id: str, start: int, messages: list[NewMessage]
    ) -> ConversationSummary:
        """Drop the messages from index ``start`` on and append ``messages`` in their place —
        regenerating an answer, or editing a question and sending it again. ``start`` may be
        the message count (a plain append)."""
        ...

    def delete(self, owner: str, conversation_id: str) -> None: ...

    def close(self) -> None: ...

    # last: inside the class body the name ``list`` is this method, not the builtin
    def list(
        self, owner: str, *, query: str | None = None, limit: int = 50, offset: int = 0
    ) -> ConversationPage:
        """The owner's conversations, most recently updated first; ``query`` keeps those whose
        title or any message contains it (case-insensitive for Latin letters)."""
        ...
