"""Conversations live on the server: in headless Chromium, a chat started in one browser (with
its own system prompt, temperature and max tokens) is there in a second, fresh browser context —
another device — and what either does (regenerate, edit and resend, rename, delete) the other
sees after a reload; search finds chats by their text; the browser's old localStorage history is
imported once. The model is the fake upstream, so the requests it got can be checked too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hanlin.testing.upstream import UpstreamServer
from tests.agents.test_loop import answer

pytestmark = pytest.mark.slow
PATH = "/v1/chat/completions"
MODEL = "fake/chat-1"
LEGACY = [
    {
        "id": "cold1",
        "title": "Lighthouse question",
        "model": MODEL,
        "updated": 1_700_000_000_000,
        "messages": [
            {"role": "user", "content": "Where is the Qingdao lighthouse?"},
            {"role": "assistant", "content": "On a granite headland.", "model": MODEL},
        ],
    }
]


@pytest.fixture
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer() as server:
        yield server


@pytest.fixture
def chat_server(hanlin_home: Path, upstream: UpstreamServer, request: pytest.FixtureRequest) -> str:
    (hanlin_home / "hanlin.toml").write_text(
        f'[models]\ndefault = "{MODEL}"\nretries = 0\n\n'
        f'[models.endpoints.fake]\nbase_url = "{upstream.url}"\nmodels = ["chat-1"]\n',
        encoding="utf-8",
    )
    url: str = request.getfixturevalue("server_url")
    return url


def _sent(upstream: UpstreamServer) -> list[dict[str, Any]]:
    return [body for path, _, body in upstream.app.requests if path == PATH]


def test_a_chat_follows_you_to_another_browser(
    page: Any,
    chat_server: str,
    upstream: UpstreamServer,
    artifacts_dir: Path,
    console_errors: list[str],
) -> None:
    from playwright.sync_api import expect

    def item(p: Any, title: str) -> Any:
        return p.get_by_test_id("chat-item").filter(has_text=title)

    # --- the first browser: its old localStorage history is imported, once -----------------
    page.goto(chat_server + "/")
    page.evaluate("chats => localStorage.setItem('hanlin.chats', JSON.stringify(chats))", LEGACY)
    page.reload()
    expect(page.get_by_test_id("toast").first).to_contain_text("1 conversation(s)")
    expect(item(page, "Lighthouse question")).to_have_count(1)
    assert page.evaluate("localStorage.getItem('hanlin.chats')") is None
    page.reload()
    expect(item(page, "Lighthouse question")).to_have_count(1)  # not imported twice

    # --- a new chat with its own settings ---------------------------------------------------
    page.get_by_test_id("new-chat").click()
    page.get_by_test_id("model-select").select_option(MODEL)
    page.get_by_test_id("chat-settings-toggle").click()
    page.get_by_test_id("setting-system").fill("Answer like a tea master.")
    page.get_by_test_id("setting-temperature").fill("0.3")
    page.get_by_test_id("setting-max-tokens").fill("40")
    page.get_by_test_id("chat-settings-save").click()
    expect(page.get_by_test_id("chat-settings")).to_be_hidden()
    upstream.app.script(PATH, answer("Oolong is a partly oxidised tea."))
    page.get_by_test_id("chat-input").fill("What is oolong?")
    page.get_by_test_id("chat-input").press("Enter")
    reply = page.get_by_test_id("message-assistant").last
    expect(reply).to_have_attribute("data-status", "done")
    expect(reply).to_contain_text("Oolong is a partly oxidised tea.")
    first = _sent(upstream)[-1]
    assert first["messages"] == [
        {"role": "system", "content": "Answer like a tea master."},
        {"role": "user", "content": "What is oolong?"},
    ]
    assert first["temperature"] == 0.3 and first["max_tokens"] == 40
    expect(item(page, "What is oolong?")).to_have_count(1)
    chat_url = page.url
    assert "#/chat/c_" in chat_url

    # --- a second, fresh browser context: another device ------------------------------------
    other = page.context.browser.new_context(
        viewport={"width": 1280, "height": 800}, locale="en-US"
    )
    phone = other.new_page()
    phone.set_default_timeout(20_000)
    phone.on("pageerror", lambda exc: console_errors.append(f"uncaught (2nd): {exc}"))
    phone.goto(chat_server + "/")
    expect(item(phone, "What is oolong?")).to_have_count(1)
    expect(item(phone, "Lighthouse question")).to_have_count(1)
    item(phone, "What is oolong?").locator("a").click()
    expect(phone.get_by_test_id("message-user")).to_have_count(1)
    expect(phone.get_by_test_id("message-user")).to_contain_text("What is oolong?")
    expect(phone.get_by_test_id("message-assistant")).to_contain_text("partly oxidised")
    phone.get_by_test_id("chat-settings-toggle").click()
    expect(phone.get_by_test_id("setting-system")).to_have_value("Answer like a tea master.")
    expect(phone.get_by_test_id("setting-temperature")).to_have_value("0.3")
    expect(phone.get_by_test_id("setting-max-tokens")).to_have_value("40")
    phone.get_by_test_id("setting-temperature").fill("0.7")
    phone.get_by_test_id("chat-settings-save").click()
    expect(phone.get_by_test_id("chat-settings")).to_be_hidden()
    phone.screenshot(path=str(artifacts_dir / "conversations-second-device.png"))

    # regenerate: the last answer is asked again and replaced, with the new temperature
    upstream.app.script(PATH, answer("Oolong sits between green and black tea."))
    phone.get_by_test_id("regenerate").click()
    expect(phone.get_by_test_id("message-assistant")).to_have_count(1)
    expect(phone.get_by_test_id("message-assistant")).to_contain_text("between green and black")
    expect(phone.get_by_test_id("message-assistant")).to_have_attribute("data-status", "done")
    again = _sent(upstream)[-1]
    assert [m["content"] for m in again["messages"]] == [
        "Answer like a tea master.",
        "What is oolong?",
    ]
    assert again["temperature"] == 0.7

    # edit and resend: the question is replaced and what followed it is dropped
    upstream.app.script(PATH, answer("Green tea is not oxidised at all."))
    phone.get_by_test_id("edit-message").click()
    phone.get_by_test_id("edit-input").fill("What is green tea?")
    phone.get_by_test_id("edit-send").click()
    expect(phone.get_by_test_id("message-assistant")).to_contain_text("not oxidised at all")
    expect(phone.get_by_test_id("message-assistant")).to_have_attribute("data-status", "done")
    expect(phone.get_by_test_id("message-user")).to_have_count(1)
    expect(phone.get_by_test_id("message-user")).to_contain_text("What is green tea?")
    assert [m["content"] for m in _sent(upstream)[-1]["messages"]][1:] == ["What is green tea?"]

    # --- back on the first browser, after a reload: the other device's changes ---------------
    page.reload()
    expect(page.get_by_test_id("message-user")).to_have_count(1)
    expect(page.get_by_test_id("message-user")).to_contain_text("What is green tea?")
    expect(page.get_by_test_id("message-assistant")).to_have_count(1)
    expect(page.get_by_test_id("message-assistant")).to_contain_text("not oxidised at all")

    # rename
    item(page, "What is oolong?").get_by_test_id("chat-rename").click()
    page.get_by_test_id("chat-rename-input").fill("Tea talk")
    page.get_by_test_id("chat-rename-input").press("Enter")
    expect(item(page, "Tea talk")).to_have_count(1)
    expect(item(page, "What is oolong?")).to_have_count(0)

    # search: by a word only the answer has, then by nothing that exists
    search = page.get_by_test_id("chat-search")
    search.fill("OXIDISED")
    expect(page.get_by_test_id("chat-item")).to_have_count(1)
    expect(page.get_by_test_id("chat-item")).to_contain_text("Tea talk")
    search.fill("granite")
    expect(page.get_by_test_id("chat-item")).to_have_count(1)
    expect(page.get_by_test_id("chat-item")).to_contain_text("Lighthouse question")
    search.fill("no such words")
    expect(page.get_by_test_id("chat-list-empty")).to_have_text("No conversation matches.")
    search.fill("")
    expect(page.get_by_test_id("chat-item")).to_have_count(2)

    # Chinese
    page.get_by_test_id("lang-toggle").click()
    expect(page.get_by_test_id("chat-settings-toggle")).to_have_text("对话设置")
    expect(page.get_by_test_id("regenerate")).to_have_text("重新生成")
    expect(page.get_by_test_id("edit-message")).to_have_text("编辑")
    search.fill("没有")
    expect(page.get_by_test_id("chat-list-empty")).to_have_text("没有匹配的对话。")
    search.fill("")
    page.screenshot(path=str(artifacts_dir / "conversations-zh.png"))
    page.get_by_test_id("lang-toggle").click()

    # delete, after a confirmation; gone on the other device too
    messages: list[str] = []

    def confirm(dialog: Any) -> None:
        messages.append(dialog.message)
        dialog.accept()

    page.once("dialog", confirm)
    item(page, "Tea talk").get_by_test_id("chat-delete").click()
    expect(item(page, "Tea talk")).to_have_count(0)
    assert messages == ["Delete the conversation “Tea talk”? This cannot be undone."]
    expect(page.get_by_test_id("chat-empty")).to_be_visible()
    phone.reload()
    expect(item(phone, "Lighthouse question")).to_have_count(1)
    expect(phone.get_by_test_id("chat-item")).to_have_count(1)
    other.close()
    assert console_errors == [], json.dumps(console_errors, indent=1)
