"""Who is calling, and what they may do.

Without configuration the server listens on loopback and needs no key. Keys are required when
``server.require_keys`` is set or the server binds any other address (``hanlin serve`` refuses
to start then until a key exists). A key carries scopes (``chat``, ``kb:read``, ``kb:write``,
``admin``) and may be limited to some knowledge bases. Its id is passed to the gateway as the
``user`` option, so per-key budgets and the usage ledger see who spent what.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hanlin.errors import ConfigError
from hanlin.server.apikeys import APIKey, APIKeyStore
from hanlin.server.errors import ApiError

bearer = HTTPBearer(
    auto_error=False,
    description="`Authorization: Bearer hk-…` — needed when the server requires API keys",
)


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def keys_required(host: str, require_keys: bool) -> bool:
    return require_keys or not is_loopback(host)


def check_startup(host: str, require_keys: bool, store: APIKeyStore) -> None:
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
    server does not require keys (a key sent anyway only names the caller)."""

    key: APIKey | None
    enforced: bool

    @property
    def user(self) -> str | None:
        """What the gateway records as the caller (per-key budgets)."""
        return self.key.id if self.key else None

    def can(self, scope: str) -> bool:
        return not self.enforced or (self.key is not None and self.key.allows(scope))

    def can_kb(self, name: str) -> bool:
        return not self.enforced or (self.key is not None and self.key.allows_kb(name))

    def require(self, scope: str, kb: str | None = None) -> None:
        """Raise 403 unless the key has ``scope`` (and may use knowledge base ``kb``)."""
        if not self.can(scope):
            label = f"{self.key.id} ({self.key.name})" if self.key and self.key.name else "it"
            raise ApiError(
                403,
                f"this API key ({label}) lacks the scope '{scope}'",
                hint=f"use a key created with `hanlin apikeys create --scope {scope}` (or admin)",
                type="permission_error",
                code="insufficient_scope",
            )
        if kb is not None and not self.can_kb(kb):
            allowed = ", ".join(self.key.kbs) if self.key else ""
            raise ApiError(
                403,
                f"this API key may not use the knowledge base '{kb}'",
                hint=f"it may use: {allowed}; create a key with `--kb {kb}` for this one",
                type="permission_error",
                code="kb_not_allowed",
            )


class Authenticator:
    """Turns an ``Authorization`` header into a :class:`Principal` (or a 401)."""

    def __init__(self, store: APIKeyStore, required: bool) -> None:
        self.store = store
        self.required = required

    def authenticate(self, token: str | None) -> Principal:
        key = self.store.verify(token) if token else None
        if not self.required:
            return Principal(key, enforced=False)
        if key is None:
            raise ApiError(
                401,
                "invalid or revoked API key" if token else "this server needs an API key",
                hint="send `Authorization: Bearer hk-…`; create a key with "
                "`hanlin apikeys create --scope chat`",
                type="authentication_error",
                code="invalid_api_key" if token else "missing_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return Principal(key, enforced=True)


def principal(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> Principal:
    """FastAPI dependency: the authenticated caller."""
    auth: Authenticator = request.app.state.hanlin.auth
    return auth.authenticate(credentials.credentials if credentials else None)


def scope(name: str) -> Callable[..., Principal]:
    """FastAPI dependency factory: a caller holding ``name``."""

    def dependency(caller: Principal = Depends(principal)) -> Principal:
        caller.require(name)
        return caller

    return dependency


def kb_scope(name: str) -> Callable[..., Principal]:
    """FastAPI dependency factory for ``/api/kb/{name}/…``: ``name`` scope on that KB."""

    def dependency(request: Request, caller: Principal = Depends(principal)) -> Principal:
        caller.require(name, kb=request.path_params.get("name"))
        return caller

    return dependency
