"""First-hour polish in a real browser: the model picker puts runnable models first and keeps
unconfigured ones behind a toggle; an endpoint added on Settings → Connections (a real local
server standing in for Ollama) shows up in the picker without a restart; errors appear in
Chinese when the page is in Chinese. Headless Chromium against the real server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hanlin.testing.recordings import model_list
from hanlin.testing.upstream import UpstreamServer

pytestmark = pytest.mark.slow
KEY = "sk-local-Q9wE4rT7yU1iO3pA8abcd"


@pytest.fixture
def provider() -> Iterator[UpstreamServer]:
    with UpstreamServer() as server:
        yield server


def test_picker_shows_configured_models_first(
    page: Any, server_url: str, artifacts_dir: Path, console_errors: list[str]
) -> None:
    from playwright.sync_api import expect

    page.goto(server_url + "/")
    select = page.get_by_test_id("model-select")
    more = page.get_by_test_id("model-more")
    expect(more).to_be_visible()
    expect(more).to_contain_text("not configured")
    # nothing that cannot run is in the list until asked for
    assert select.locator("option[disabled]").count() == 0
    hidden = int(more.inner_text().split()[0].lstrip("+"))
    assert hidden > 30
    page.screenshot(path=str(artifacts_dir / "picker-configured.png"))
    more.click()
    disabled = select.locator("option[disabled]")
    expect(disabled).to_have_count(hidden)
    groups = select.locator("optgroup").evaluate_all("gs => gs.map(g => g.label)")
    assert groups[-1].startswith("Not configured"), groups  # after every runnable group
    assert "openai/gpt-4o-mini" in disabled.evaluate_all("os => os.map(o => o.value)")
    expect(more).to_contain_text("Hide")
    page.get_by_test_id("model-setup").click()
    expect(page.get_by_test_id("settings-view")).to_be_visible()
    assert console_errors == []


def test_endpoint_added_in_settings_appears_in_the_picker(
    page: Any,
    server_url: str,
    provider: UpstreamServer,
    artifacts_dir: Path,
    console_errors: list[str],
) -> None:
    from playwright.sync_api import expect

    provider.app.script("/v1/models", model_list("ollama", ["qwen2.5:7b", "llama3.2:3b"]))
    page.goto(server_url + "/#/settings")
    expect(page.get_by_test_id("settings-title")).to_have_text("Connections")
    page.get_by_test_id("conn-name").fill("lab")
    page.get_by_test_id("conn-url").fill(provider.url)
    page.get_by_test_id("conn-key").fill(KEY)
    page.get_by_test_id("conn-test").click()
    expect(page.get_by_test_id("conn-status")).to_contain_text("2 models found")
    expect(page.get_by_test_id("conn-models")).to_have_value("llama3.2:3b\nqwen2.5:7b")
    page.get_by_test_id("conn-save").click()
    row = page.locator('[data-testid="conn-endpoint"][data-name="lab"]')
    expect(row).to_be_visible()
    expect(row.get_by_test_id("conn-key-status")).to_have_text("sk-…abcd")
    assert KEY not in page.content()
    assert "null" not in page.get_by_test_id("settings-view").inner_text()
    page.screenshot(path=str(artifacts_dir / "connections.png"), full_page=True)

    page.goto(server_url + "/#/chat")
    option = page.locator('[data-testid="model-select"] option[value="lab/qwen2.5:7b"]')
    expect(option).to_have_count(1)
    assert not option.is_disabled()
    expect(page.locator('[data-testid="model-select"] optgroup[label="lab"]')).to_have_count(1)
    page.get_by_test_id("model-select").select_option("lab/qwen2.5:7b")
    assert console_errors == []


def test_errors_are_shown_in_chinese(
    page: Any, server_url: str, artifacts_dir: Path, console_errors: list[str]
) -> None:
    from playwright.sync_api import expect

    assert httpx.post(server_url + "/api/kb", json={"name": "docs"}).status_code == 201
    page.add_init_script("localStorage.setItem('hanlin.lang', 'zh')")
    page.goto(server_url + "/#/kb/docs")
    expect(page.get_by_test_id("kb-title")).to_have_text("docs")
    page.get_by_test_id("file-input").set_input_files(
        [
            {"name": "tool.exe", "mimeType": "application/octet-stream", "buffer": b"MZ\x90\x00"},
            {"name": "fake.pdf", "mimeType": "application/pdf", "buffer": b"not a pdf at all"},
        ]
    )
    reasons = page.get_by_test_id("upload-reason")
    expect(reasons.filter(has_text="不支持此文件类型（.exe）")).to_have_count(1)
    expect(reasons.filter(has_text="文件内容与扩展名 .pdf 不符")).to_have_count(1)
    page.screenshot(path=str(artifacts_dir / "upload-errors-zh.png"))

    page.goto(server_url + "/#/kb/nope")
    expect(page.get_by_test_id("toast").filter(has_text="知识库“nope”不存在")).to_be_visible()
    # the settings page words its errors the same way
    page.goto(server_url + "/#/settings")
    page.get_by_test_id("conn-name").fill("x")
    page.get_by_test_id("conn-url").fill("http://169.254.169.254/v1")
    page.get_by_test_id("conn-save").click()
    expect(page.get_by_test_id("conn-status")).to_contain_text("此地址不能用作模型服务器")
    assert [e for e in console_errors if "404" not in e and "400" not in e] == []
