"""The knowledge-base page in headless Chromium against the real server: delete a failed upload
from its row (its stored bytes go with it), and re-embed the knowledge base with another model
as a background job whose chunk progress is shown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hanlin.models.embeddings.base import EMBEDDERS
from tests.conftest import job_worker, kept_uploads
from tests.knowledge import reembed_helpers
from tests.web.conftest import serve

pytestmark = pytest.mark.slow

KB = "kb-forget"
BROKEN_PDF = b"%PDF-1.4\n" + b"this is no PDF body at all\n" * 20
NOTE = b"# Lighthouse\n\nThe lighthouse keeper winds the lamp at dusk. The lens came from Paris.\n"


@pytest.fixture
def server_url(hanlin_home: Path) -> Iterator[str]:
    """A real server that can also run the small ``hashed-words`` embedding model."""
    from hanlin.config import load_settings
    from hanlin.server.app import create_app

    reembed_helpers.register(delay=0.05)
    try:
        settings = load_settings(home=hanlin_home)
        with job_worker(settings), serve(create_app(settings)) as url:
            yield url
    finally:
        EMBEDDERS.unregister(reembed_helpers.NAME)


def test_delete_a_failed_upload_and_reembed(
    page: Any, server_url: str, hanlin_home: Path, artifacts_dir: Path, console_errors: list[str]
) -> None:
    from playwright.sync_api import expect

    page.on("dialog", lambda dialog: dialog.accept())  # the confirm() before deleting
    page.goto(server_url + "/")
    page.get_by_test_id("kb-name-input").fill(KB)
    page.get_by_test_id("kb-create").click()
    expect(page.get_by_test_id("kb-title")).to_have_text(KB)

    page.get_by_test_id("file-input").set_input_files(
        files=[
            {"name": "broken.pdf", "mimeType": "application/pdf", "buffer": BROKEN_PDF},
            {"name": "lighthouse.md", "mimeType": "text/markdown", "buffer": NOTE},
        ]
    )
    failed = page.locator('[data-testid="doc-row"][data-status="failed"]')
    expect(failed).to_have_count(1, timeout=120_000)
    expect(failed).to_contain_text("broken.pdf")
    stored = [name for name in kept_uploads(hanlin_home, KB) if name.endswith(".pdf")]
    assert len(stored) == 1
    failed.get_by_test_id("doc-forget").click()
    expect(failed).to_have_count(0)
    expect(page.locator('[data-testid="doc-row"][data-status="done"]')).to_have_count(1)
    assert stored[0] not in kept_uploads(hanlin_home, KB), "deleted with its failure"

    # --- re-embed: pick a model that can run, follow the job to the end ----------------------
    page.get_by_test_id("kb-reembed").click()
    dialog = page.get_by_test_id("reembed-dialog")
    expect(dialog).to_be_visible()
    model = page.get_by_test_id("reembed-model")
    option = model.locator(f'option[value="{reembed_helpers.NAME}"]')
    expect(option).to_be_enabled(timeout=60_000)  # each model is loaded and tried once
    model.select_option(reembed_helpers.NAME)
    page.screenshot(path=str(artifacts_dir / "kb-reembed-dialog.png"))
    page.get_by_test_id("reembed-start").click()
    expect(dialog).to_be_hidden()
    job = page.locator('[data-testid="upload-item"][data-kind="reembed"]')
    expect(job).to_have_attribute("data-status", "done", timeout=120_000)
    expect(job.get_by_test_id("job-progress")).to_contain_text("chunks")
    expect(page.get_by_test_id("kb-stats")).to_have_attribute(
        "title", f"Embedding model: {reembed_helpers.NAME}"
    )
    page.screenshot(path=str(artifacts_dir / "kb-reembed.png"), full_page=True)
    assert not console_errors, console_errors
