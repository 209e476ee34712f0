"""The knowledge-base page's actions in headless Chromium against the real server: add a URL
(a page served on loopback), follow a sync job, open a document's chunk viewer, and retry a
failed upload from its row."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import job_worker
from tests.web.conftest import serve

pytestmark = pytest.mark.slow

KB = "kb-actions"
FACT = "MARIGOLD-7733"
PAGE = f"""<!doctype html><html><head><title>Harbour notes</title></head><body>
<h1>Harbour notes</h1>
<p>The harbour master keeps the tide tables in a brass cabinet. The cabinet code is {FACT}.</p>
<p>Fishing boats leave before dawn and return in the early afternoon.</p>
</body></html>"""
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 64


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def page_url() -> Iterator[str]:
    """A web page on 127.0.0.1, for the knowledge base to fetch."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/harbour.html"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def private_server_url(hanlin_home: Path) -> Iterator[str]:
    """A Hanlin server that may fetch loopback URLs (the SSRF guard refuses them by default)."""
    from hanlin.config import load_settings
    from hanlin.server.app import create_app

    settings = load_settings(
        home=hanlin_home,
        server={"allow_private_urls": True},
        knowledge={"allow_private_urls": True},
    )
    with job_worker(settings), serve(create_app(settings)) as url:
        yield url


def test_add_url_sync_chunks_and_retry_a_failed_upload(
    page: Any,
    private_server_url: str,
    page_url: str,
    artifacts_dir: Path,
    console_errors: list[str],
) -> None:
    from playwright.sync_api import expect

    page.goto(private_server_url + "/")
    page.get_by_test_id("kb-name-input").fill(KB)
    page.get_by_test_id("kb-create").click()
    expect(page.get_by_test_id("kb-title")).to_have_text(KB)

    # --- add a URL: it is fetched and ingested as a background job ---------------------------
    page.get_by_test_id("url-input").fill(page_url)
    page.get_by_test_id("url-add").click()
    item = page.locator(f'[data-testid="upload-item"][data-kind="url"][data-filename="{page_url}"]')
    expect(item).to_be_visible()
    expect(item).to_have_attribute("data-status", "done", timeout=180_000)
    expect(page.get_by_test_id("url-input")).to_have_value("")
    row = page.locator('[data-testid="doc-row"][data-status="done"]')
    expect(row).to_have_count(1, timeout=20_000)
    expect(row).to_contain_text(page_url)

    # --- the chunk viewer shows the document's text, chunk by chunk -------------------------
    row.get_by_test_id("doc-chunks").click()
    viewer = page.get_by_test_id("chunk-viewer")
    expect(viewer).to_be_visible()
    expect(page.get_by_test_id("chunk-title")).to_contain_text("Harbour notes")
    expect(viewer.get_by_test_id("chunk").first).to_be_visible()
    expect(viewer.get_by_test_id("chunk-list")).to_contain_text(FACT)
    page.screenshot(path=str(artifacts_dir / "kb-chunk-viewer.png"))
    page.get_by_test_id("chunk-close").click()
    expect(viewer).to_be_hidden()

    # --- sync: a job that re-reads every source, followed in the list ------------------------
    page.get_by_test_id("kb-sync").click()
    sync = page.locator('[data-testid="upload-item"][data-kind="sync"]')
    expect(sync).to_have_count(1)
    expect(sync).to_have_attribute("data-status", "done", timeout=120_000)
    expect(sync.get_by_test_id("job-progress")).to_contain_text("1 of 1 files")

    # --- a failed upload's row offers a retry, which runs a sync -----------------------------
    page.get_by_test_id("file-input").set_input_files(
        files=[{"name": "report.pdf", "mimeType": "application/pdf", "buffer": EXE}]
    )
    failed = page.locator('[data-testid="upload-item"][data-filename="report.pdf"]')
    expect(failed).to_have_attribute("data-status", "failed")
    failed_row = page.locator('[data-testid="doc-row"][data-status="failed"]')
    expect(failed_row).to_contain_text("report.pdf")
    expect(failed_row.get_by_test_id("doc-reason")).to_contain_text("Windows executable")
    expect(failed_row.get_by_test_id("doc-chunks")).to_have_count(0)
    failed_row.get_by_test_id("doc-retry").click()
    expect(sync).to_have_count(2)
    expect(sync.last).to_have_attribute("data-status", "done", timeout=120_000)
    page.screenshot(path=str(artifacts_dir / "kb-actions.png"), full_page=True)
    assert not console_errors, console_errors
