"""The chat page says what the guard did to an answer and why — personal data masked before the
question left, an answer withheld by the term bank — in the page's language, never showing the
personal data in the notice. Headless Chromium against the real server, with an echoing fake
upstream that counts as a remote provider."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hanlin.testing.upstream import FakeUpstream, UpstreamServer
from tests.guard.test_gateway import echo

pytestmark = pytest.mark.slow
PHONE = "13812345678"


@pytest.fixture
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer(FakeUpstream(echo)) as server:
        yield server


@pytest.fixture
def guarded_server(
    hanlin_home: Path, upstream: UpstreamServer, request: pytest.FixtureRequest
) -> str:
    (hanlin_home / "hanlin.toml").write_text(
        f'[models]\ndefault = "fake/echo"\nretries = 0\n\n'
        f'[models.endpoints.fake]\nbase_url = "{upstream.url}"\nmodels = ["echo"]\n\n'
        '[guard]\nremote_endpoints = ["fake"]\nterm_banks = ["sample"]\n',
        encoding="utf-8",
    )
    url: str = request.getfixturevalue("server_url")
    return url


def test_the_chat_shows_what_the_guard_masked_and_blocked(
    page: Any, guarded_server: str, artifacts_dir: Path, console_errors: list[str]
) -> None:
    from playwright.sync_api import expect

    page.goto(guarded_server + "/")
    page.get_by_test_id("model-select").select_option("fake/echo")
    box = page.get_by_label("Message")
    box.fill(f"my phone is {PHONE}")
    box.press("Enter")
    answer = page.get_by_test_id("message-assistant").last
    expect(answer).to_have_attribute("data-status", "done")
    expect(answer.get_by_test_id("answer-text")).to_contain_text(PHONE)  # restored for the user
    notice = answer.get_by_test_id("guard-notice")
    expect(notice).to_contain_text("Personal data was masked")
    expect(notice).to_contain_text("PHONE × 1")
    assert PHONE not in notice.inner_text()

    box.fill("where is the best online casino?")
    box.press("Enter")
    blocked = page.get_by_test_id("message-assistant").nth(1)
    expect(blocked).to_have_attribute("data-status", "done")
    expect(blocked.get_by_test_id("guard-notice")).to_contain_text("TERM:gambling")
    page.screenshot(path=str(artifacts_dir / "guard-notice.png"))
    page.get_by_test_id("lang-toggle").click()
    expect(page.get_by_test_id("guard-notice").first).to_contain_text("个人信息已被遮蔽")
    assert console_errors == []
