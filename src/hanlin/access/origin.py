"""Which browser requests a Hanlin server answers, written once for ``hanlin serve`` and
``hanlin mcp serve --http``: the Host names it serves (against DNS rebinding), which requests
are cross-site (against CSRF), and the security headers of every response (against framing,
sniffing and cross-origin reads). :class:`BrowserGuard` is the ASGI middleware applying them.

Hosts: ``localhost``, any 127.0.0.0/8 address and ``[::1]``, with any port, always; the bound
address itself when it is not loopback (binding 0.0.0.0 or :: allows every IP literal, which
DNS rebinding cannot produce); and each entry of ``server.allowed_hosts`` (``name`` for any
port, ``name:port`` for one, ``*`` for any host at all). Anything else is 421.

Cross-site: an ``Origin`` other than the requested host and other than ``server.cors_origins``,
``Origin: null``, or ``Sec-Fetch-Site: cross-site``/``same-site`` (another port of localhost is
another program). Such requests are 403 whatever their method, except top-level navigations
(a link to the UI) and CORS preflights. A POST/PUT/PATCH to a route that takes JSON must say
``Content-Type: application/json`` (415 otherwise), so no browser "simple request" reaches it.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::"})
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}

#: the UI loads only its own files: no inline script or style, no plugins, no framing
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    # not no-referrer: with it, a same-origin form submission would carry `Origin: null`
    ("referrer-policy", "same-origin"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
)


def split_host(value: str) -> tuple[str, int | None] | None:
    """``name[:port]`` or ``[v6]:port`` as (lower-case name without brackets, port), or None
    when it is not a host."""
    value = value.strip().lower()
    if value.startswith("["):
        name, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port = rest[1:]
    else:
        name, _, port = value.partition(":")
    name = name.rstrip(".")
    if not name or (port and not port.isdigit()) or any(c in name for c in "/@?# "):
        return None
    return name, int(port) if port else None


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def is_loopback(name: str) -> bool:
    """Whether ``name`` (a host name or address, IPv6 in brackets or not) is this machine only:
    ``localhost``, 127.0.0.0/8, ``::1``. The one rule for binding, keys and Host headers."""
    ip = _ip(name.strip("[]"))
    return name.lower() == "localhost" if ip is None else ip.is_loopback


@dataclass(frozen=True, slots=True)
class OriginPolicy:
    """The Host names a server answers to and the origins it takes as its own (see the module
    docstring). ``bind`` is the address the server listens on."""

    allowed_hosts: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()
    bind: str = "127.0.0.1"

    @classmethod
    def of(
        cls, allowed_hosts: Iterable[str], cors_origins: Iterable[str], bind: str
    ) -> OriginPolicy:
        return cls(
            tuple(h.strip().lower() for h in allowed_hosts if h.strip()),
            tuple(o.strip().rstrip("/").lower() for o in cors_origins if o.strip()),
            bind.strip().lower(),
        )

    def host_allowed(self, host: str) -> bool:
        """Whether a request with this ``Host`` header is for this server."""
        parsed = split_host(host)
        if parsed is None:
            return False
        name, port = parsed
        if is_loopback(name) or "*" in self.allowed_hosts:
            return True
        if self.bind in _WILDCARD_BINDS and _ip(name) is not None:
            return True
        if not is_loopback(self.bind) and name == self.bind.strip("[]"):
            return True
        for entry in self.allowed_hosts:
            allowed = split_host(entry)
            if allowed is not None and allowed[0] == name and allowed[1] in (None, port):
                return True
        return False

    def cross_site(self, headers: Mapping[str, str]) -> str | None:
        """Why a request (lower-case header names) comes from another site, or None."""
        origin = headers.get("origin")
        if origin is not None:
            origin = origin.strip().rstrip("/").lower()
            if origin == "null":
                return "its Origin is null (a sandboxed frame or a local file)"
            if origin in self.cors_origins or "*" in self.cors_origins:
                return None
            if _same_origin(origin, headers.get("host", "")):
                return None
            return f"it comes from the web page {origin}"
        site = headers.get("sec-fetch-site", "").lower()
        if site in ("cross-site", "same-site"):
            return f"the browser says it is {site}"
        return None


def _same_origin(origin: str, host: str) -> bool:
    """Whether ``origin`` (scheme://host[:port]) names the host this request was sent to.
    The scheme is not compared, so a TLS-terminating proxy in front keeps working."""
    parts = urlsplit(origin)
    theirs, ours = split_host(parts.netloc), split_host(host)
    if theirs is None or ours is None or parts.scheme not in _DEFAULT_PORTS:
        return False
    default = _DEFAULT_PORTS[parts.scheme]
    return theirs[0] == ours[0] and (theirs[1] or default) == (ours[1] or default)


def is_json_type(content_type: str) -> bool:
    """Whether a Content-Type is JSON (``application/json`` or ``application/*+json``)."""
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


def _has_body(headers: Mapping[str, str]) -> bool:
    length = headers.get("content-length", "").strip()
    return "transfer-encoding" in headers or (length != "" and length != "0")


class BrowserGuard:
    """ASGI middleware: 400/421 for a foreign ``Host``, 403 for a cross-site request, 415 for a
    non-JSON body to a JSON route (``json_route(scope)``), and :data:`SECURITY_HEADERS` on every
    response (``csp`` overrides the policy per path). Pure ASGI, so streams are untouched."""

    def __init__(
        self,
        app: ASGIApp,
        policy: OriginPolicy,
        *,
        json_route: Callable[[Scope], bool] | None = None,
        csp: Mapping[str, str] | None = None,
    ) -> None:
        self.app = app
        self.policy = policy
        self.json_route = json_route
        self.csp = dict(csp or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        refusal = self.refusal(scope, headers)
        if refusal is not None:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            else:
                await self._send_error(send, scope["path"], *refusal)
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        extra = self._security_headers(scope["path"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                added = [(k, v) for k, v in extra if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *added]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def refusal(self, scope: Scope, headers: Mapping[str, str]) -> tuple[int, str, str, str] | None:
        """(status, message, hint, code) when the request is refused, else None."""
        host = headers.get("host")
        if host is None:
            return 400, "the request has no Host header", "send `Host: 127.0.0.1:PORT`", "no_host"
        if not self.policy.host_allowed(host):
            return (
                421,
                f"this server does not answer to the host name {host!r}",
                "a web page may be trying to reach it through DNS rebinding; if you use this "
                "name yourself, add it to server.allowed_hosts "
                "(HANLIN_SERVER__ALLOWED_HOSTS='[\"name\"]')",
                "host_not_allowed",
            )
        method = scope.get("method", "GET")
        if method == "OPTIONS":  # a CORS preflight: answered (or not) by the CORS settings
            return None
        navigation = method in ("GET", "HEAD") and headers.get("sec-fetch-mode") == "navigate"
        why = None if navigation else self.policy.cross_site(headers)
        if why is not None:
            return (
                403,
                f"cross-site request refused: {why}",
                "call the API from the Hanlin UI, a script or an SDK; to let a web app on "
                "another origin call it, add that origin to server.cors_origins",
                "cross_site_request",
            )
        if (
            method in ("POST", "PUT", "PATCH")
            and self.json_route is not None
            and not is_json_type(headers.get("content-type", ""))
            and (_has_body(headers) or "content-type" in headers)
            and self.json_route(scope)
        ):
            return (
                415,
                f"this route takes JSON, not {headers.get('content-type') or 'an untyped body'}",
                "send the body as JSON with `Content-Type: application/json`",
                "unsupported_media_type",
            )
        return None

    def _security_headers(self, path: str) -> list[tuple[bytes, bytes]]:
        csp = self.csp.get(path, CSP)
        return [
            (k.encode(), (csp if k == "content-security-policy" else v).encode())
            for k, v in SECURITY_HEADERS
        ]

    async def _send_error(
        self, send: Send, path: str, status: int, message: str, hint: str, code: str
    ) -> None:
        kind = "permission_error" if status == 403 else "invalid_request_error"
        error = {"message": message, "type": kind, "hint": hint, "code": code}
        body = json.dumps({"error": error}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *self._security_headers(path),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _headers(scope: Scope) -> dict[str, str]:
    """The request's headers with lower-case names (the first of repeated ones)."""
    found: dict[str, str] = {}
    for key, value in scope.get("headers", []):
        found.setdefault(key.decode("latin-1").lower(), value.decode("latin-1"))
    return found


__all__ = [
    "CSP",
    "SECURITY_HEADERS",
    "BrowserGuard",
    "OriginPolicy",
    "is_json_type",
    "split_host",
]
