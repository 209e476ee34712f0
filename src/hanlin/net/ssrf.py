"""Fetch a URL that someone else chose without letting it reach private networks (SSRF guard).

A URL from a user (an HTTP client of the server, a document, an agent's tool call) must not make
Hanlin read the cloud metadata service, an admin page on localhost or a host on the office LAN.
:func:`safe_fetch` therefore:

- resolves the host itself and refuses it if *any* address is loopback, private, link-local
  (169.254.169.254, the metadata service), multicast, reserved, unspecified (``0.0.0.0``) or
  shared (100.64/10 — Alibaba Cloud's metadata service is 100.100.100.200), including those
  addresses written inside IPv6 (``::ffff:127.0.0.1``, 6to4, Teredo, NAT64) and odd spellings
  (``2130706433``, ``0x7f.1``: the *resolved* address is what is checked);
- connects to the address it checked — the URL's host is replaced by that IP and the name goes in
  the ``Host`` header and TLS SNI (certificates are still verified against the name), so a DNS
  answer that changes between the check and the connection (DNS rebinding) cannot redirect it;
- follows redirects itself, checking every hop the same way;
- caps the body size and the total time, and ignores proxy variables (a proxy would resolve names
  itself, behind the check).

``allow_private=True`` (settings ``knowledge.allow_private_urls`` / ``server.allow_private_urls``)
turns the address check off; ``allowed_hosts`` lets named hosts through (an intranet wiki).
``policy`` replaces the address rule: :func:`endpoint_blocked_reason` is the one for model
endpoints an admin configures (loopback and private networks allowed, see docs/security.md).
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hanlin.errors import HanlinError, InvalidInputError

if TYPE_CHECKING:
    import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: ``policy(ip)`` → why an address may not be fetched, or None
Policy = Callable[[IPAddress], str | None]
#: ``resolver(host, port)`` → the addresses the host resolves to (strings, as getaddrinfo gives)
Resolver = Callable[[str, int], Sequence[str]]

_REDIRECTS = {301, 302, 303, 307, 308}
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
_ALLOW_HINT = (
    "only public addresses may be fetched; if you trust this address, set "
    "knowledge.allow_private_urls = true (server.allow_private_urls for the HTTP server)"
)


class BlockedURLError(InvalidInputError):
    """The URL is not allowed: wrong scheme, or its host resolves to a non-public address."""


class FetchError(HanlinError):
    """The URL could not be fetched (network, HTTP status, size or time limit)."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        status: int | None = None,
        code: str | None = None,
        params: dict[str, object] | None = None,
    ):
        super().__init__(message, hint=hint, code=code, params=params)
        self.status = status


@dataclass(frozen=True, slots=True)
class FetchedURL:
    """A fetched body. ``url`` is the final URL after redirects."""

    url: str
    status: int
    content: bytes
    content_type: str | None
    headers: dict[str, str] = field(default_factory=dict)


def blocked_reason(ip: IPAddress) -> str | None:
    """What kind of non-public address this is (``"a loopback address"``), or None."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded: list[ipaddress.IPv4Address] = []
        if ip.ipv4_mapped is not None:
            embedded.append(ip.ipv4_mapped)
        if ip.sixtofour is not None:
            embedded.append(ip.sixtofour)
        if ip.teredo is not None:
            embedded.extend(ip.teredo)
        if ip in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        for inner in embedded:
            reason = blocked_reason(inner)
            if reason:
                return f"{reason} ({inner}, written as IPv6)"
    if ip in _METADATA:
        return "the cloud metadata service"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED:
        return "a shared (carrier-grade NAT) address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:
        return "a reserved address"
    return None


#: what an admin-configured model endpoint may be: Ollama or vLLM on this machine or the LAN
_ENDPOINT_ALLOWED = ("a loopback address", "a private address")


def endpoint_blocked_reason(ip: IPAddress) -> str | None:
    """:func:`blocked_reason` for a model endpoint an admin configured: loopback and private
    addresses are allowed (a local Ollama or vLLM, a GPU box on the LAN); the metadata
    services, link-local, shared (CGNAT), multicast, unspecified and reserved ones are not —
    no model server lives there, and they are what an SSRF aims at."""
    reason = blocked_reason(ip)
    return None if reason is None or reason.startswith(_ENDPOINT_ALLOWED) else reason


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True, slots=True)
class _Target:
    url: httpx.URL
    host: str  # ASCII (IDNA) host name or IP literal, without brackets
    port: int
    addresses: tuple[IPAddress, ...]


def _parse(url: str | httpx.URL) -> httpx.URL:
    # httpx is imported where it is used: this module loads with the knowledge stack, and most
    # commands fetch nothing (httpx and what it pulls in cost ~0.1 s)
    import httpx

    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise BlockedURLError(f"not a valid URL: {url!r} ({exc})", hint="check the URL") from None
    if parsed.scheme not in ("http", "https"):
        raise BlockedURLError(
            f"refused to fetch {url!r}: only http and https URLs can be fetched",
            hint="give an http:// or https:// URL",
        )
    if not parsed.raw_host:
        raise BlockedURLError(f"refused to fetch {url!r}: the URL has no host", hint="check it")
    return parsed


def _target(
    url: str | httpx.URL,
    *,
    allow_private: bool,
    allowed_hosts: Collection[str],
    resolver: Resolver | None,
    policy: Policy = blocked_reason,
) -> _Target:
    parsed = _parse(url)
    host = parsed.raw_host.decode("ascii").lower()
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        raw = (resolver or _system_resolver)(host, port)
    except (OSError, UnicodeError) as exc:
        raise FetchError(
            f"cannot resolve the host of {parsed}: {exc}", hint="check the URL and your DNS"
        ) from None
    addresses: list[IPAddress] = []
    for text in raw:
        try:
            addresses.append(ipaddress.ip_address(text.split("%", 1)[0]))
        except ValueError:
            continue
    if not addresses:
        raise FetchError(f"the host of {parsed} has no address", hint="check the URL")
    trusted = allow_private or host in allowed_hosts or f"{host}:{port}" in allowed_hosts
    if not trusted:
        for ip in addresses:
            reason = policy(ip)
            if reason:
                where = f"{host} is" if _literal(host) == ip else f"{host} resolves to {ip},"
                raise BlockedURLError(
                    f"refused to fetch {parsed}: {where} {reason}", hint=_ALLOW_HINT
                )
    return _Target(parsed, host, port, tuple(addresses))


def check_url(
    url: str,
    *,
    allow_private: bool = False,
    allowed_hosts: Collection[str] = (),
    resolver: Resolver | None = None,
    policy: Policy = blocked_reason,
) -> list[str]:
    """Check a URL without fetching it; returns the addresses it would connect to.

    Raises :class:`BlockedURLError` for a refused URL, :class:`FetchError` if the host does not
    resolve.
    """
    target = _target(
        url,
        allow_private=allow_private,
        allowed_hosts=allowed_hosts,
        resolver=resolver,
        policy=policy,
    )
    return [str(a) for a in target.addresses]


def _pinned_request(
    client: httpx.Client,
    target: _Target,
    timeout: float,
    method: str = "GET",
    content: bytes | None = None,
) -> httpx.Response:
    """Open a streamed request to the checked address, keeping the name for Host and TLS."""
    import httpx

    ip = target.addresses[0]
    url = target.url.copy_with(host=str(ip))
    default_port = 443 if target.url.scheme == "https" else 80
    host_header = f"[{target.host}]" if ":" in target.host else target.host
    if target.port != default_port:
        host_header += f":{target.port}"
    extensions = {"sni_hostname": target.host} if target.url.scheme == "https" else {}
    request = client.build_request(
        method,
        url,
        content=content,
        headers={"Host": host_header},
        timeout=httpx.Timeout(timeout),
        extensions=extensions,
    )
    return client.send(request, stream=True, follow_redirects=False)


def safe_fetch(
    url: str,
    *,
    allow_private: bool = False,
    allowed_hosts: Collection[str] = (),
    max_bytes: int = 64 << 20,
    timeout: float = 30.0,
    max_redirects: int = 5,
    resolver: Resolver | None = None,
    headers: dict[str, str] | None = None,
    policy: Policy = blocked_reason,
    method: str = "GET",
    content: bytes | None = None,
) -> FetchedURL:
    """GET ``url`` through the SSRF guard (see the module docstring).

    ``timeout`` bounds the whole fetch, redirects and body included; ``max_bytes`` the body.
    ``method`` and ``content`` send another request (a workflow's HTTP node); a redirect
    other than 307/308 turns it into a GET without a body, as browsers do.
    Raises :class:`BlockedURLError` (refused by policy, nothing was sent) or :class:`FetchError`
    (unreachable, HTTP error status, too large, too slow, too many redirects).
    """
    import httpx

    deadline = time.monotonic() + timeout
    current: str | httpx.URL = url
    with httpx.Client(
        trust_env=False,  # a proxy would resolve names itself, behind our check
        headers={"user-agent": "hanlin", **(headers or {})},
        follow_redirects=False,
    ) as client:
        for _ in range(max_redirects + 1):
            target = _target(
                current,
                allow_private=allow_private,
                allowed_hosts=allowed_hosts,
                resolver=resolver,
                policy=policy,
            )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FetchError(f"fetching {url} took over {timeout:g} s", hint="try again later")
            try:
                response = _pinned_request(client, target, remaining, method, content)
            except httpx.TimeoutException:
                raise FetchError(
                    f"fetching {target.url} took over {timeout:g} s", hint="try again later"
                ) from None
            except httpx.HTTPError as exc:
                raise FetchError(
                    f"cannot fetch {target.url}: {exc}", hint="check the URL and your network"
                ) from None
            try:
                location = response.headers.get("location")
                if response.status_code in _REDIRECTS and location:
                    current = target.url.join(location)
                    if response.status_code not in (307, 308):
                        method, content = "GET", None
                    continue
                if response.status_code >= 400:
                    raise FetchError(
                        f"{target.url} answered HTTP {response.status_code}",
                        hint="check that the URL is right and publicly readable",
                        status=response.status_code,
                    )
                body = _read_capped(response, max_bytes, deadline, str(target.url), timeout)
                return FetchedURL(
                    url=str(target.url),
                    status=response.status_code,
                    content=body,
                    content_type=response.headers.get("content-type"),
                    headers=dict(response.headers),
                )
            finally:
                response.close()
    raise FetchError(
        f"{url} redirected more than {max_redirects} times", hint="give the final URL directly"
    )


def _read_capped(
    response: httpx.Response, max_bytes: int, deadline: float, url: str, timeout: float
) -> bytes:
    import httpx

    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(_too_large(url, max_bytes), hint=_SIZE_HINT)
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise FetchError(_too_large(url, max_bytes), hint=_SIZE_HINT)
            if time.monotonic() > deadline:
                raise FetchError(f"fetching {url} took over {timeout:g} s", hint="try again later")
            chunks.append(chunk)
    except httpx.TimeoutException:
        raise FetchError(
            f"fetching {url} took over {timeout:g} s", hint="try again later"
        ) from None
    except httpx.HTTPError as exc:
        raise FetchError(f"reading {url} failed: {exc}", hint="try again later") from None
    return b"".join(chunks)


_SIZE_HINT = "raise knowledge.max_file_mb in hanlin.toml if you need larger downloads"


def _too_large(url: str, max_bytes: int) -> str:
    return f"{url} is larger than the limit of {max_bytes / (1 << 20):.3g} MB"
