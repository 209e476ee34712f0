"""Serving the MCP server: over stdio, or over streamable HTTP at ``/mcp`` with the same API
keys as ``hanlin serve`` (``Authorization: Bearer hk-…``, required off loopback or with
``server.require_keys``; a missing or bad key is a 401 before any MCP message is read).
"""

from __future__ import annotations

import json
from typing import Any

from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

from hanlin.access.auth import (
    AuthenticationError,
    Authenticator,
    bearer_token,
    check_startup,
    keys_required,
    open_apikeys,
)
from hanlin.access.origin import BrowserGuard, OriginPolicy
from hanlin.mcpserver.server import HanlinMcp


class BearerAuth:
    """ASGI middleware: authenticate every HTTP request, put the caller in the scope as
    ``hanlin.principal`` (the MCP handlers read it to apply scopes)."""

    def __init__(self, app: ASGIApp, auth: Authenticator) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            scope["hanlin.principal"] = self.auth.authenticate(bearer_token(scope))
        except AuthenticationError as exc:
            error = {"message": exc.message, "type": "authentication_error"}
            body = json.dumps({"error": error | {"hint": exc.hint, "code": exc.code}})
            headers = [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]
            await send({"type": "http.response.start", "status": 401, "headers": headers})
            await send({"type": "http.response.body", "body": body.encode()})
            return
        await self.app(scope, receive, send)


def http_app(mcp: HanlinMcp, host: str = "127.0.0.1", *, require_keys: bool | None = None) -> Any:
    """The ASGI app serving ``mcp`` at ``/mcp`` behind API-key authentication, with the same
    host and cross-site rule as ``hanlin serve`` (:class:`~hanlin.access.origin.BrowserGuard`,
    which replaces the SDK's own DNS-rebinding check so ``server.allowed_hosts`` applies).

    Raises :class:`hanlin.errors.ConfigError` when keys are required and none exists.
    """
    settings = mcp.settings
    require = settings.server.require_keys if require_keys is None else require_keys
    store = open_apikeys(settings)
    check_startup(host, require, store)
    app = mcp.server.streamable_http_app(
        host=host,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    authed = BearerAuth(app, Authenticator(store, keys_required(host, require)))
    server = settings.server
    return BrowserGuard(authed, OriginPolicy.of(server.allowed_hosts, server.cors_origins, host))


async def serve_stdio(mcp: HanlinMcp) -> None:
    """Serve one client over this process's stdin/stdout until it closes them."""
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read, write):
        await mcp.server.run(read, write, mcp.server.create_initialization_options())


__all__ = ["BearerAuth", "http_app", "serve_stdio"]
