"""Who is calling: API keys turned into a :class:`Principal`, and when keys are required.

Without configuration a server (``hanlin serve``, ``hanlin mcp serve --http``) listens on
loopback and needs no key. Keys are required when ``server.require_keys`` is set or the server
binds any other address (the server refuses to start then until a key exists). A key carries
scopes (``chat``, ``kb:read``, ``kb:write``, ``agents``, ``workflows``, ``admin``) and may be
limited to some knowledge bases; :attr:`Principal.access` is what the library checks. Both
servers use this module, so the rule is written once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hanlin.access.apikeys import APIKey, APIKeys, APIKeyStore
from hanlin.access.caller import Access
from hanlin.access.origin import is_loopback
from hanlin.config import Settings
from hanlin.errors import ConfigError, HanlinError

#: the key file of an app directory, when no ``database_url`` is set
KEY_FILE = "apikeys.json"


def open_apikeys(settings: Settings) -> APIKeys:
    """Where these settings keep API keys: ``HANLIN_HOME/apikeys.json``, or the database's
    ``api_keys`` table (shared by every replica) when ``database_url`` is set. Cheap: nothing
    is read until first use."""
    if settings.database_url:
        from hanlin.access.apikeys_postgres import PostgresAPIKeys

        return PostgresAPIKeys(settings.database_url)
    return APIKeyStore(settings.home / KEY_FILE)


class AuthenticationError(HanlinError):
    """A server that requires API keys got none, or an invalid or revoked one (HTTP 401)."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(
            message,
            hint="send `Authorization: Bearer hk-…`; create a key with "
            "`hanlin apikeys create --scope chat`",
        )
        self.code = code


def keys_required(host: str, require_keys: bool) -> bool:
    return require_keys or not is_loopback(host)


def check_startup(host: str, require_keys: bool, store: APIKeys) -> None:
    """Refuse to serve without keys when keys are required (non-loopback bind)."""
    if keys_required(host, require_keys) and not store.has_active():
        why = "server.require_keys is set" if require_keys else f"it binds {host}, not loopback"
        raise ConfigError(
            f"the server needs API keys because {why}, and none exists",
            hint="create one with `hanlin apikeys create --scope chat,kb:read` "
            "(or bind 127.0.0.1 to serve this machine only without keys)",
        )


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller. ``key`` is None for keyless local access; ``enforced`` is False when the
    server does not require keys (a key sent anyway only names the caller). The rules
    themselves are :class:`hanlin.access.caller.Access`, which the library checks again
    wherever a knowledge base is read or a model is spent."""

    key: APIKey | None
    enforced: bool

    @property
    def user(self) -> str | None:
        """What the gateway records as the caller (per-key budgets)."""
        return self.key.id if self.key else None

    @property
    def access(self) -> Access:
        """What this caller may do: its key's scopes and knowledge bases when keys are
        enforced, else everything (the keyless loopback server serves this machine's user)."""
        if self.enforced and self.key is not None:
            return self.key.access()
        return Access(user=self.user, label="local caller")

    def can(self, scope: str) -> bool:
        return self.access.can(scope)

    def can_kb(self, name: str) -> bool:
        return self.access.can_kb(name)

    def require(self, scope: str, kb: str | None = None) -> None:
        """Raise :class:`~hanlin.errors.AccessDeniedError` (403) unless the key has ``scope``
        (and may use knowledge base ``kb``)."""
        self.access.require(scope, kb)


class Authenticator:
    """Turns a bearer token into a :class:`Principal` (or :class:`AuthenticationError`)."""

    def __init__(self, store: APIKeys, required: bool) -> None:
        self.store = store
        self.required = required

    def authenticate(self, token: str | None) -> Principal:
        key = self.store.verify(token) if token else None
        if not self.required:
            return Principal(key, enforced=False)
        if key is None:
            raise AuthenticationError(
                "invalid or revoked API key" if token else "this server needs an API key",
                code="invalid_api_key" if token else "missing_api_key",
            )
        return Principal(key, enforced=True)


def bearer_token(scope: Mapping[str, Any]) -> str | None:
    """The token of an ``Authorization: Bearer …`` header in an ASGI scope, if any."""
    for key, value in scope.get("headers", []):
        if key == b"authorization":
            kind, _, rest = value.decode("latin-1").partition(" ")
            return rest.strip() if kind.lower() == "bearer" else None
    return None
