"""The caller's access — which scopes it holds and which knowledge bases it may use — carried
with the work it starts, and checked where that work reads a knowledge base or spends a model.

A surface (HTTP server, MCP server) turns a request's API key into an :class:`Access` and runs
the request inside :func:`acting_as`. Everything the request starts inherits it through a
context variable: RAG calls, agents and their tools (``kb_search`` on another knowledge base),
MCP handlers, background tasks started from it (``asyncio`` tasks and ``asyncio.to_thread``
copy the context; the gateway's own loop thread is handed the caller's context explicitly).
The checks live in the library path every surface shares — :class:`~hanlin.knowledge.kb.
KnowledgeBase` reads and writes, :class:`~hanlin.models.gateway.Gateway` calls, RAG's choice
of model and history — so a new surface or tool cannot forget them. Code that runs outside any
request (the CLI, scripts, tests) acts as the local user, who may do everything.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace

from hanlin.errors import AccessDeniedError

#: every scope a key can hold; ``admin`` allows everything, ``kb:write`` includes ``kb:read``
SCOPES = {
    "chat": "/v1/chat/completions, /v1/embeddings, /v1/models; choosing a model or sending "
    "conversation history to a knowledge base's ask",
    "kb:read": "list, search and ask knowledge bases (with the server's configured generator), "
    "list documents and jobs",
    "kb:write": "create knowledge bases, upload files, add URLs, sync, delete documents, "
    "cancel jobs",
    "agents": "list and run agents (/v1/agents, agent:<name> models), answer their approvals",
    "workflows": "list and run workflows (/v1/workflows, their webhooks, workflow:<name> models, "
    "MCP workflow tools); read, resume, answer and cancel the key's own runs",
    "admin": "everything, including deleting knowledge bases",
}


@dataclass(frozen=True, slots=True)
class Access:
    """What one caller may do. ``None`` means no limit (every scope, every knowledge base)."""

    scopes: frozenset[str] | None = None
    kbs: frozenset[str] | None = None
    #: who the gateway records as the caller (an API key's id): per-key budgets and the ledger
    user: str | None = None
    #: how errors name the caller ("API key key_ab12 (ci)")
    label: str = "the local user"

    @classmethod
    def key(cls, key_id: str, scopes: list[str], kbs: list[str], name: str = "") -> Access:
        """The access of an API key (an empty ``kbs`` list means every knowledge base)."""
        label = f"API key {key_id}" + (f" ({name})" if name else "")
        return cls(frozenset(scopes), frozenset(kbs) or None, key_id, label)

    def can(self, scope: str) -> bool:
        have = self.scopes
        if have is None or "admin" in have or scope in have:
            return True
        return scope == "kb:read" and "kb:write" in have

    def can_kb(self, name: str) -> bool:
        return self.kbs is None or name in self.kbs

    def require(self, scope: str, kb: str | None = None) -> None:
        """Raise :class:`AccessDeniedError` unless this caller holds ``scope`` (and may use
        knowledge base ``kb``)."""
        if not self.can(scope):
            raise AccessDeniedError(
                f"this {self.label} lacks the scope '{scope}'",
                hint=f"use a key created with `hanlin apikeys create --scope {scope}` (or admin)",
                code="insufficient_scope",
                params={"scope": scope},
            )
        if kb is not None and not self.can_kb(kb):
            allowed = ", ".join(sorted(self.kbs or ()))
            raise AccessDeniedError(
                f"this {self.label} may not use the knowledge base '{kb}'",
                hint=f"it may use: {allowed}; create a key with `--kb {kb}` for this one",
                code="kb_not_allowed",
                params={"kb": kb},
            )

    def granting(self, *scopes: str) -> Access:
        """This caller with ``scopes`` added — for work the server's operator configured on
        the caller's behalf (RAG's configured generator answering a ``kb:read`` caller)."""
        if self.scopes is None:
            return self
        return replace(self, scopes=self.scopes | frozenset(scopes))


LOCAL = Access()
#: a caller whose key is missing or invalid where keys are required: may do nothing
NOBODY = Access(frozenset(), frozenset(), label="unauthenticated caller")
_current: ContextVar[Access] = ContextVar("hanlin_access", default=LOCAL)


def current() -> Access:
    """The access of whoever the running code works for (the local user outside requests)."""
    return _current.get()


def require(scope: str, kb: str | None = None) -> None:
    """``current().require(scope, kb)``."""
    _current.get().require(scope, kb)


@contextmanager
def acting_as(access: Access) -> Iterator[Access]:
    """Run the block (and everything it starts) with ``access``.

    Not across a ``yield`` of a generator: a generator may be resumed in another context."""
    token = _current.set(access)
    try:
        yield access
    finally:
        _current.reset(token)


@contextmanager
def configured_model(via: str) -> Iterator[Access]:
    """Spend a model the operator configured for a feature the caller may use (RAG's
    generator for ``kb:read``, an agent's model for ``agents``): requires ``via``, and grants
    ``chat`` for the block. Wrap only the gateway call, not the caller's own choices."""
    who = _current.get()
    who.require(via)
    with acting_as(who.granting("chat")) as granted:
        yield granted
