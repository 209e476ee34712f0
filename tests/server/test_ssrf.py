"""The SSRF guard (``hanlin.net.safe_fetch``): what it refuses, how it pins the address it
checked, and that redirects, size and time are checked too. Only loopback is ever contacted:
refused addresses are refused before any connection."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hanlin.net import BlockedURLError, FetchError, blocked_reason, check_url, safe_fetch


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/redirect-to-"):
            target = self.path.removeprefix("/redirect-to-")
            self.send_response(302)
            self.send_header("location", f"http://{target}/latest/meta-data")
            self.end_headers()
            return
        if self.path == "/hop":
            self.send_response(301)
            self.send_header("location", "/page")
            self.end_headers()
            return
        if self.path == "/slow":
            time.sleep(1.5)
        body = b"x" * 5000 if self.path == "/big" else b"host=" + self.headers["host"].encode()
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.handle_error = lambda *args: None  # type: ignore[method-assign]  # timed-out clients
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1/", "loopback"),
        ("http://localhost:8080/admin", "loopback"),
        ("http://10.1.2.3/", "private"),
        ("http://192.168.0.1/", "private"),
        ("http://172.16.5.4/", "private"),
        ("http://169.254.169.254/latest/meta-data", "cloud metadata service"),
        ("http://[::1]/", "loopback"),
        ("http://[fe80::1]/", "link-local"),
        ("http://[::ffff:127.0.0.1]/", "is a loopback address (127.0.0.1, written as IPv6)"),
        ("http://[::ffff:169.254.169.254]/", "metadata"),
        ("http://2130706433/", "resolves to 127.0.0.1, a loopback"),
        ("http://0x7f.1/", "loopback"),
        ("http://017700000001/", "loopback"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("http://100.100.100.200/", "shared"),
        ("http://240.0.0.1/", "reserved"),
        ("ftp://example.com/file", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("http:///nohost", "no host"),
    ],
)
def test_non_public_addresses_are_refused(url: str, why: str) -> None:
    with pytest.raises(BlockedURLError) as info:
        safe_fetch(url)
    assert why in info.value.message and info.value.hint


def test_a_name_is_refused_if_any_address_is_private() -> None:
    def resolver(host: str, port: int) -> list[str]:
        return {"intranet.example": ["10.0.0.7"], "mixed.example": ["93.184.216.34", "10.0.0.7"]}[
            host
        ]

    for host in ("intranet.example", "mixed.example"):
        with pytest.raises(BlockedURLError, match=r"resolves to 10\.0\.0\.7, a private address"):
            check_url(f"https://{host}/", resolver=resolver)
    assert check_url("https://public.example/", resolver=lambda h, p: ["93.184.216.34"]) == [
        "93.184.216.34"
    ]
    assert check_url(
        "http://intranet.example/", resolver=resolver, allowed_hosts={"intranet.example"}
    )


def test_connects_to_the_checked_address_with_the_name_in_host(port: int) -> None:
    calls: list[str] = []

    def resolver(host: str, p: int) -> list[str]:
        calls.append(host)
        return ["127.0.0.1"]

    got = safe_fetch(
        f"http://docs.internal.test:{port}/page", allow_private=True, resolver=resolver
    )
    assert got.content == f"host=docs.internal.test:{port}".encode()
    assert calls == ["docs.internal.test"]  # resolved once: no second lookup to rebind


def test_redirect_to_a_private_address_is_refused(port: int) -> None:
    first_hop_only = {f"127.0.0.1:{port}"}
    for target in ("169.254.169.254", "10.0.0.1", "[::1]"):
        with pytest.raises(BlockedURLError, match="refused to fetch http://"):
            safe_fetch(
                f"http://127.0.0.1:{port}/redirect-to-{target}", allowed_hosts=first_hop_only
            )
    ok = safe_fetch(f"http://127.0.0.1:{port}/hop", allowed_hosts=first_hop_only)
    assert ok.url.endswith("/page") and ok.status == 200


def test_allowed_when_explicitly_permitted(port: int) -> None:
    with pytest.raises(BlockedURLError):
        safe_fetch(f"http://127.0.0.1:{port}/page")
    got = safe_fetch(f"http://127.0.0.1:{port}/page", allow_private=True)
    assert got.content == f"host=127.0.0.1:{port}".encode() and got.content_type == "text/plain"


def test_size_time_and_redirect_limits(port: int) -> None:
    base = f"http://127.0.0.1:{port}"
    with pytest.raises(FetchError, match="larger than the limit"):
        safe_fetch(base + "/big", allow_private=True, max_bytes=1000)
    with pytest.raises(FetchError, match="took over"):
        safe_fetch(base + "/slow", allow_private=True, timeout=0.5)
    with pytest.raises(FetchError, match="redirected more than 0 times"):
        safe_fetch(base + "/hop", allow_private=True, max_redirects=0)
    with pytest.raises(FetchError, match="cannot resolve"):
        safe_fetch("http://nothing.invalid/", resolver=_no_dns)


def _no_dns(host: str, port: int) -> list[str]:
    raise OSError("Name or service not known")


def test_blocked_reason_is_none_for_public_addresses() -> None:
    import ipaddress

    for text in ("8.8.8.8", "93.184.216.34", "2606:4700:4700::1111"):
        assert blocked_reason(ipaddress.ip_address(text)) is None
