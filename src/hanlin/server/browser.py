"""The server's browser defences: :class:`hanlin.access.origin.BrowserGuard` installed with this
app's JSON routes (for the 415 on simple-request bodies) and the looser CSP of the API docs."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.types import Scope

from hanlin.access.origin import BrowserGuard, OriginPolicy, is_json_type
from hanlin.config import ServerSettings

#: FastAPI's /docs and /redoc pages load Swagger UI / ReDoc from a CDN with an inline script
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src 'self' https://fonts.gstatic.com; img-src 'self' data: https:; "
    "worker-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)


def json_operations(spec: dict[str, Any]) -> list[tuple[re.Pattern[str], str]]:
    """(path pattern, upper-case method) of every operation whose request body is JSON."""
    found = []
    for path, operations in spec.get("paths", {}).items():
        pattern = re.compile(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)))
        for method, operation in operations.items():
            content = (operation.get("requestBody") or {}).get("content", {})
            if any(is_json_type(kind) for kind in content):
                found.append((pattern, method.upper()))
    return found


def json_route(app: FastAPI) -> Callable[[Scope], bool]:
    """A predicate: does this request go to an operation of ``app`` that takes JSON? Read from
    the app's OpenAPI schema on first use, so every route counts, whenever it was added."""
    table: list[tuple[re.Pattern[str], str]] = []

    def check(scope: Scope) -> bool:
        if not table:
            table.extend(json_operations(app.openapi()))
        method, path = scope.get("method", ""), scope["path"]
        return any(m == method and p.fullmatch(path) for p, m in table)

    return check


def install(app: FastAPI, server: ServerSettings) -> None:
    """Add the guard as the outermost middleware so it answers before CORS, auth or routing."""
    docs = (app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url)
    app.add_middleware(
        BrowserGuard,
        policy=OriginPolicy.of(server.allowed_hosts, server.cors_origins, server.host),
        json_route=json_route(app),
        csp={path: DOCS_CSP for path in docs if path},
    )
