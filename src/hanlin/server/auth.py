"""The HTTP server's side of authentication: FastAPI dependencies that require a scope, and
the middleware that runs each request as its caller (see :mod:`hanlin.access`)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

from hanlin.access.auth import AuthenticationError, Authenticator, Principal, bearer_token
from hanlin.access.caller import NOBODY, acting_as

bearer = HTTPBearer(
    auto_error=False,
    description="`Authorization: Bearer hk-…` — needed when the server requires API keys",
)


class CallerContext:
    """ASGI middleware: run each HTTP request as its caller (:func:`acting_as`), so the
    library's own checks see the key's scopes and knowledge bases in everything the request
    starts. A missing or bad key runs as :data:`NOBODY`; the route's dependency answers 401."""

    def __init__(self, app: ASGIApp, auth: Authenticator) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            who = self.auth.authenticate(bearer_token(scope)).access
        except AuthenticationError:
            who = NOBODY
        with acting_as(who):
            await self.app(scope, receive, send)


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
