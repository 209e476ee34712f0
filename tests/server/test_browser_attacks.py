"""Browser attacks on the keyless loopback server, performed for real against a uvicorn server:
DNS rebinding (a foreign ``Host``), cross-site uploads and syncs (``Origin``/``Sec-Fetch-Site``),
CORS "simple request" bodies on JSON routes, a page on another origin in headless Chromium
planting a document with ``fetch(…, {mode: "no-cors"})`` and framing the UI, and the MCP
server's HTTP transport refusing the same hosts. Clients that are not browsers keep working."""

from __future__ import annotations

import contextlib
import functools
import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from hanlin.access.origin import CSP, OriginPolicy
from hanlin.config import Settings
from hanlin.mcpserver.http import http_app
from hanlin.mcpserver.server import build_server
from hanlin.server.app import create_app
from hanlin.testing import recordings as rec
from hanlin.testing.upstream import UpstreamServer
from tests.conftest import home_database, job_worker, lasting_home
from tests.server.conftest import MODEL, LiveServer, build_kb, make_settings, wait_job
from tests.web.conftest import _find_chromium

EVIL = "http://evil.example"
PLANTED = "ZEBRA-PLANTED-9931"
MCP_INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "attack-test", "version": "1"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


@pytest.fixture(scope="module")
def served(
    request: pytest.FixtureRequest, upstream_server: UpstreamServer
) -> Iterator[tuple[LiveServer, Settings]]:
    """A keyless loopback server with the knowledge base ``docs``, which also answers to the
    listed host ``hanlin.test``."""
    home = lasting_home(request, "attacked")
    with home_database(home):
        settings = make_settings(home, upstream_server.url, allowed_hosts=["hanlin.test"])
    build_kb(settings).close()
    with job_worker(settings):
        live = LiveServer(create_app(settings))
        yield live, settings
        live.stop()


def call(live: LiveServer, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, live.url + path, timeout=60, **kwargs)


def planted_anywhere(live: LiveServer, kb: str = "docs") -> list[str]:
    """What shows that an attack got through: a job, a document or a search hit (asked the way
    a non-browser client does, without Origin)."""
    found = [f"job {j['job']}" for j in call(live, "GET", f"/api/kb/{kb}/jobs").json()["data"]]
    docs = call(live, "GET", f"/api/kb/{kb}/documents").json()["data"]
    found += [f"document {d['source']}" for d in docs if "planted" in d["source"]]
    hits = call(live, "POST", f"/api/kb/{kb}/search", json={"query": PLANTED, "mode": "keyword"})
    found += [f"hit {h['source']}" for h in hits.json()["data"] if PLANTED in h["text"]]
    return found


def upload(live: LiveServer, headers: dict[str, str], kb: str = "docs") -> httpx.Response:
    files = {"files": ("planted.md", f"# Planted\n\nThe answer is {PLANTED}.\n".encode())}
    return call(live, "POST", f"/api/kb/{kb}/files", headers=headers, files=files)


# -- DNS rebinding ------------------------------------------------------------------------------


def test_a_rebinding_host_is_refused_and_changes_nothing(
    served: tuple[LiveServer, Settings],
) -> None:
    live, _ = served
    evil = {"Host": f"evil.example:{live.port}"}
    listed = call(live, "GET", "/api/kb", headers=evil)
    assert listed.status_code == 421 and "docs" not in listed.text
    err = listed.json()["error"]
    assert err["code"] == "host_not_allowed" and "server.allowed_hosts" in err["hint"]
    assert set(err) == {"message", "type", "hint", "code"}
    search = call(live, "POST", "/api/kb/docs/search", headers=evil, json={"query": "oolong"})
    assert search.status_code == 421 and "Oolong" not in search.text
    assert call(live, "DELETE", "/api/kb/docs", headers=evil).status_code == 421
    assert call(live, "GET", "/", headers=evil).status_code == 421  # the UI too
    chat = {"model": MODEL, "messages": [{"role": "user", "content": "spend my keys"}]}
    assert call(live, "POST", "/v1/chat/completions", headers=evil, json=chat).status_code == 421
    # nothing changed: the knowledge base is still there with its three documents
    kb = call(live, "GET", "/api/kb/docs")
    assert kb.status_code == 200 and kb.json()["documents"] == 3


def test_loopback_and_listed_hosts_are_served_and_lookalikes_are_not(
    served: tuple[LiveServer, Settings],
) -> None:
    live, _ = served
    served_hosts = ["localhost:{port}", "127.0.0.1:{port}", "[::1]:{port}", "127.0.0.2:{port}"]
    for host in [*served_hosts, "LOCALHOST", "hanlin.test:{port}"]:  # the last one is listed
        resp = call(live, "GET", "/api/kb", headers={"Host": host.format(port=live.port)})
        assert resp.status_code == 200 and resp.json()["data"][0]["name"] == "docs", host
    for host in ("hanlin.test.evil.example", "evilhanlin.test", "localhost.evil.example", "::1"):
        assert call(live, "GET", "/api/kb", headers={"Host": host}).status_code == 421, host


def test_the_host_rule() -> None:
    loopback = OriginPolicy.of([], [], "127.0.0.1")
    assert all(map(loopback.host_allowed, ["localhost", "127.0.0.1:1", "[::1]", "127.9.9.9:80"]))
    assert not any(map(loopback.host_allowed, ["10.0.0.5", "evil.example", "", "[::1", "a:b:c"]))
    listed = OriginPolicy.of(["intranet.lan", "box.lan:9000"], [], "127.0.0.1")
    assert listed.host_allowed("intranet.lan:1234") and listed.host_allowed("box.lan:9000")
    assert not listed.host_allowed("box.lan:9001") and not listed.host_allowed("other.lan")
    # a server bound to one address answers to that address; bound to all, to every IP literal
    lan = OriginPolicy.of([], [], "192.168.1.5")
    assert lan.host_allowed("192.168.1.5:8321") and not lan.host_allowed("192.168.1.6")
    everywhere = OriginPolicy.of([], [], "0.0.0.0")
    assert everywhere.host_allowed("10.1.2.3:8321") and everywhere.host_allowed("[fd00::1]")
    assert not everywhere.host_allowed("rebound.evil.example")
    assert OriginPolicy.of(["*"], [], "127.0.0.1").host_allowed("anything.example")


# -- cross-site requests ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": EVIL},
        {"Origin": EVIL, "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"},
        {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "no-cors"},  # another localhost port
    ],
    ids=["origin", "origin+fetch-metadata", "fetch-metadata", "null-origin", "same-site"],
)
def test_a_cross_site_upload_is_refused_and_not_ingested(
    served: tuple[LiveServer, Settings], headers: dict[str, str]
) -> None:
    live, _ = served
    resp = upload(live, headers)
    assert resp.status_code == 403, resp.text
    assert resp.json()["error"]["code"] == "cross_site_request"
    assert "server.cors_origins" in resp.json()["error"]["hint"]
    assert planted_anywhere(live) == []


def test_cross_site_sync_delete_and_reads_are_refused(served: tuple[LiveServer, Settings]) -> None:
    live, _ = served
    cross = {"Origin": EVIL, "Sec-Fetch-Site": "cross-site"}
    assert call(live, "POST", "/api/kb/docs/sync", headers=cross).status_code == 403
    assert call(live, "DELETE", "/api/kb/docs", headers=cross).status_code == 403
    created = call(live, "POST", "/api/kb", headers=cross, json={"name": "planted"})
    assert created.status_code == 403
    read = call(live, "GET", "/api/kb", headers=cross)
    assert read.status_code == 403 and "access-control-allow-origin" not in read.headers
    assert call(live, "GET", "/api/kb/docs/jobs").json()["data"] == []  # no sync was started
    assert [k["name"] for k in call(live, "GET", "/api/kb").json()["data"]] == ["docs"]
    # a link from another site to the UI still opens it (a top-level navigation)
    nav = {
        "Sec-Fetch-Site": "cross-site",
        "Sec-Fetch-Mode": "navigate",
        "Sec-Fetch-Dest": "document",
    }
    assert call(live, "GET", "/", headers=nav).status_code == 200


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain;charset=UTF-8", b'{"query": "oolong"}'),
        ("application/x-www-form-urlencoded", b'{"query": "oolong"}'),
        ("multipart/form-data; boundary=x", b'--x\r\nContent-Disposition: form-data; name="q"'),
        (None, b'{"query": "oolong"}'),  # a Blob without a type: no Content-Type at all
    ],
    ids=["text-plain", "form-urlencoded", "multipart", "untyped"],
)
def test_simple_request_bodies_on_json_routes_are_415(
    served: tuple[LiveServer, Settings], content_type: str | None, body: bytes
) -> None:
    """The shapes a browser sends without a CORS preflight never reach a JSON route's parser."""
    live, _ = served
    headers = {"Content-Type": content_type} if content_type else {}
    resp = call(live, "POST", "/api/kb/docs/search", headers=headers, content=body)
    assert resp.status_code == 415, resp.text
    assert "application/json" in resp.json()["error"]["hint"]
    chat = b'{"model": "%s", "messages": [{"role": "user", "content": "hi"}]}' % MODEL.encode()
    resp = call(live, "POST", "/v1/chat/completions", headers=headers, content=chat)
    assert resp.status_code == 415


def test_scripts_sdks_and_the_same_origin_ui_keep_working(
    served: tuple[LiveServer, Settings], upstream: UpstreamServer
) -> None:
    live, _ = served
    # curl-style: no Origin, no fetch metadata
    assert call(live, "GET", "/api/kb").status_code == 200
    hits = call(live, "POST", "/api/kb/docs/search", json={"query": "oolong brewing"})
    assert hits.status_code == 200 and hits.json()["data"][0]["title"] == "Oolong tea"
    # the official openai SDK
    sdk = openai.OpenAI(base_url=live.url + "/v1", api_key="not-needed", max_retries=0)
    done = sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert done.choices[0].message.content == rec.TEXT
    # the UI in a browser: same-origin requests, as Chromium sends them
    call(live, "POST", "/api/kb", json={"name": "control"})
    same = {"Origin": live.url, "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"}
    accepted = upload(live, same, kb="control")
    assert accepted.status_code == 202
    assert wait_job(httpx.Client(base_url=live.url), "control", accepted.json()["job"])["status"]
    assert planted_anywhere(live, "control"), "the control upload should have been ingested"
    assert call(live, "DELETE", "/api/kb/control", headers=same).status_code == 204


def test_a_configured_cors_origin_may_call(tmp_path: Path, upstream: UpstreamServer) -> None:
    settings = make_settings(tmp_path, upstream.url, cors_origins=["https://ui.example"])
    live = LiveServer(create_app(settings))
    try:
        ok = call(
            live, "POST", "/api/kb", headers={"Origin": "https://ui.example"}, json={"name": "x"}
        )
        assert ok.status_code == 201
        assert ok.headers["access-control-allow-origin"] == "https://ui.example"
        other = call(live, "POST", "/api/kb", headers={"Origin": EVIL}, json={"name": "y"})
        assert other.status_code == 403 and "access-control-allow-origin" not in other.headers
    finally:
        live.stop()


# -- security headers ---------------------------------------------------------------------------


def test_every_response_carries_the_security_headers(served: tuple[LiveServer, Settings]) -> None:
    live, _ = served
    responses = [
        call(live, "GET", "/"),
        call(live, "GET", "/app.js"),
        call(live, "GET", "/api/kb"),
        call(live, "GET", "/api/kb/nosuch"),
        call(live, "GET", "/api/kb", headers={"Host": "evil.example"}),
    ]
    for resp in responses:
        h = resp.headers
        assert h["content-security-policy"] == CSP, resp.url
        assert h["x-content-type-options"] == "nosniff"
        assert h["referrer-policy"] == "same-origin"
        assert h["x-frame-options"] == "DENY"
        assert h["cross-origin-opener-policy"] == "same-origin"
        assert h["cross-origin-resource-policy"] == "same-origin"
    directives = dict(d.strip().split(" ", 1) for d in CSP.split(";"))
    assert directives["script-src"] == "'self'" and directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in CSP and directives["object-src"] == "'none'"
    assert "unsafe-inline" in call(live, "GET", "/docs").headers["content-security-policy"]


# -- a real browser on another origin -----------------------------------------------------------

ATTACK_PAGE = """<!doctype html><html><body><h1>cute cats</h1>
<iframe id="framed" src="{target}/" width="800" height="600"></iframe>
<form id="f" method="POST" action="{target}/api/kb/docs/sync" target="sink"></form>
<iframe name="sink"></iframe>
<script>
window.results = [];
async function attack() {{
  const fd = new FormData();
  fd.append("files", new Blob(["# Planted\\n\\nThe answer is {planted}.\\n"]), "planted.md");
  const shots = [
    ["upload", "{target}/api/kb/docs/files", {{method: "POST", mode: "no-cors", body: fd}}],
    ["create", "{target}/api/kb", {{method: "POST", mode: "no-cors",
      body: JSON.stringify({{name: "planted"}})}}],
    ["create-blob", "{target}/api/kb", {{method: "POST", mode: "no-cors",
      body: new Blob([JSON.stringify({{name: "planted"}})])}}],
    ["delete", "{target}/api/kb/docs", {{method: "DELETE", mode: "no-cors"}}],
    ["read", "{target}/api/kb", {{}}],
  ];
  for (const [name, url, init] of shots) {{
    try {{ const r = await fetch(url, init); window.results.push(name + ":" + r.type); }}
    catch (e) {{ window.results.push(name + ":error"); }}
  }}
  document.getElementById("f").submit();
  window.done = true;
}}
attack();
</script></body></html>"""


@contextlib.contextmanager
def attacker_site(root: Path, page: str) -> Iterator[str]:
    """The attacker's web site: a plain HTTP server on another loopback port, serving
    ``page`` as its index, reached as http://localhost:PORT (another site than 127.0.0.1)."""
    (root / "index.html").write_text(page, "utf-8")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def chromium() -> str:
    """The Chromium binary the UI tests use (tests/web/conftest.py)."""
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    found = _find_chromium()
    if found is None:
        pytest.skip("no Chromium: `apt-get install chromium` or set HANLIN_CHROMIUM")
    return found


@contextlib.contextmanager
def browser(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=chromium,
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        try:
            context = b.new_context()
            page = context.new_page()
            page.set_default_timeout(20_000)
            yield page
        finally:
            b.close()


@pytest.mark.slow
def test_a_page_on_another_origin_cannot_plant_delete_or_frame(
    served: tuple[LiveServer, Settings], chromium: str, tmp_path: Path
) -> None:
    live, _ = served
    page_html = ATTACK_PAGE.format(target=live.url, planted=PLANTED)
    console: list[str] = []
    with attacker_site(tmp_path, page_html) as site, browser(chromium) as page:
        page.on("console", lambda m: console.append(m.text))
        page.goto(site + "/")
        page.wait_for_function("window.done === true")
        time.sleep(1.0)  # the form post and the frame load
        results = page.evaluate("window.results")
        assert "read:error" in results, results  # no CORS: the page cannot read the API
        assert planted_anywhere(live) == []
        names = [k["name"] for k in call(live, "GET", "/api/kb").json()["data"]]
        assert "planted" not in names and "docs" in names
        # the frame of the UI did not render: the browser refused it (frame-ancestors 'none')
        framed = [f for f in page.frames if f.url.startswith(live.url)]
        rendered = [f for f in framed if f.evaluate("!!document.querySelector('#sidebar')")]
        assert rendered == [], "the Hanlin UI rendered inside another site's frame"
        assert any("frame-ancestors" in m or "X-Frame-Options" in m for m in console), console


@pytest.mark.slow
def test_the_ui_runs_under_its_csp_without_violations(
    served: tuple[LiveServer, Settings], chromium: str
) -> None:
    live, _ = served
    with browser(chromium) as page:
        page.add_init_script(
            "window.violations = [];"
            "document.addEventListener('securitypolicyviolation',"
            " e => window.violations.push(e.violatedDirective + ' ' + e.blockedURI));"
        )
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        first = page.goto(live.url + "/")
        assert first is not None and first.headers["content-security-policy"] == CSP
        page.locator('[data-testid="kb-item"][data-name="docs"] a').click()
        page.get_by_test_id("search-input").fill("oolong brewing")
        page.get_by_test_id("search-go").click()
        page.get_by_test_id("search-result").first.wait_for()
        page.goto(live.url + "/#/compute/train")
        page.get_by_test_id("compute-view").wait_for()
        assert page.evaluate("window.violations") == []
        assert not [e for e in errors if "Content Security Policy" in e], errors


# -- the MCP server shares the rule -------------------------------------------------------------


@pytest.mark.slow
def test_the_mcp_http_server_refuses_the_same_hosts_and_origins(
    tmp_path: Path, upstream: UpstreamServer
) -> None:
    settings = make_settings(tmp_path, upstream.url, allowed_hosts=["hanlin.test"])
    live = LiveServer(http_app(build_server(settings, tools=[])))
    try:
        post = functools.partial(call, live, "POST", "/mcp", json=MCP_INIT)
        evil = post(headers={**MCP_HEADERS, "Host": f"evil.example:{live.port}"})
        assert evil.status_code == 421 and evil.json()["error"]["code"] == "host_not_allowed"
        cross = post(headers={**MCP_HEADERS, "Origin": EVIL})
        assert cross.status_code == 403
        for host in (f"localhost:{live.port}", f"127.0.0.1:{live.port}", "hanlin.test"):
            ok = post(headers={**MCP_HEADERS, "Host": host})
            assert ok.status_code == 200, (host, ok.text)
            assert ok.headers["x-frame-options"] == "DENY"
    finally:
        live.stop()
