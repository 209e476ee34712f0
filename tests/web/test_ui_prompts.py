"""The prompt pages in headless Chromium against the real server and the fake model upstream:
open a prompt from the list, edit its text in the playground (a draft), fill the variable form
made from its fields, run it and see the output, tokens, latency and cost, save it as version 2,
diff it with version 1, move ``production`` and see the label move — and a model output holding
HTML stays text. Screenshots land in ``test-artifacts/ui/``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hanlin.testing import recordings as rec
from hanlin.testing.upstream import UpstreamServer
from hanlin.tracing import setup as tracing

pytestmark = pytest.mark.slow
MODEL = "fake/gpt-test"
XSS = '<img src=x onerror="window.__xss = 1"> hello'


@pytest.fixture
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer() as server:
        yield server


@pytest.fixture
def prompt_server(
    hanlin_home: Path, upstream: UpstreamServer, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A server on the fake model (priced, so a run costs something) with the prompt
    ``greet`` at version 1."""
    (hanlin_home / "hanlin.toml").write_text(
        f'[models]\ndefault = "{MODEL}"\nretries = 0\n\n'
        f'[models.endpoints.fake]\nbase_url = "{upstream.url}"\nmodels = ["gpt-test"]\n\n'
        f'[models.prices."{MODEL}"]\ninput = 2.0\noutput = 8.0\n',
        encoding="utf-8",
    )
    url: str = request.getfixturevalue("server_url")
    made = httpx.post(
        f"{url}/api/prompts/greet/versions",
        json={
            "text": "Say hello to {name} in {n} words.",
            "variables": [{"name": "n", "type": "int", "description": "how many"}],
            "message": "first",
        },
        timeout=10,
    )
    assert made.status_code == 201, made.text
    yield url
    tracing.shutdown()


def sent(upstream: UpstreamServer) -> list[Any]:
    return [b for p, _, b in upstream.app.requests if p.endswith("/chat/completions")]


def test_playground_draft_run_save_diff_and_label(
    page: Any,
    prompt_server: str,
    upstream: UpstreamServer,
    artifacts_dir: Path,
    console_errors: list[str],
) -> None:
    from playwright.sync_api import expect

    url = prompt_server
    page.goto(url + "/#/prompts")
    row = page.get_by_test_id("prompt-row").filter(has_text="greet")
    expect(row.get_by_test_id("label-chip")).to_have_text("production → 1")
    expect(page.get_by_test_id("prompt-row").filter(has_text="rag.answer.en")).to_have_count(1)
    expect(page.get_by_test_id("prompts-nav-link")).to_have_attribute("aria-current", "page")
    page.screenshot(path=str(artifacts_dir / "50-prompts.png"), full_page=True)
    row.get_by_test_id("prompt-link").click()

    # the playground starts from version 1; the form is made from its fields
    expect(page.get_by_test_id("prompt-title")).to_have_text("greet")
    text = page.get_by_test_id("pg-text")
    expect(text).to_have_value("Say hello to {name} in {n} words.")
    expect(page.get_by_test_id("pg-var-n")).to_have_attribute("type", "number")
    expect(page.get_by_test_id("pg-draft")).to_be_hidden()
    text.fill("Say a warm hello to {name} in {n} words, {tone}.")
    expect(page.get_by_test_id("pg-draft")).to_be_visible()
    page.get_by_test_id("pg-var-name").fill("Ada")
    page.get_by_test_id("pg-var-n").fill("3")
    page.get_by_test_id("pg-var-tone").fill("kindly")
    page.get_by_test_id("pg-model").select_option(MODEL)
    page.get_by_test_id("pg-run").click()
    expect(page.get_by_test_id("pg-output")).to_have_text("Hello! How can I help you today?")
    expect(page.get_by_test_id("pg-tokens")).to_have_text("19 / 10")
    expect(page.get_by_test_id("pg-cost")).not_to_have_text("–")
    expect(page.get_by_test_id("pg-latency")).to_have_text(re.compile(r"^\d[\d.]* m?s$"))
    assert sent(upstream)[-1]["messages"] == [
        {"role": "user", "content": "Say a warm hello to Ada in 3 words, kindly."}
    ]
    assert len(httpx.get(f"{url}/api/prompts/greet/versions").json()["data"]) == 1  # a draft
    page.screenshot(path=str(artifacts_dir / "51-playground.png"), full_page=True)

    # save it as version 2: the view, the version list and the playground follow
    page.get_by_test_id("pg-save-message").fill("warmer, with a tone")
    page.get_by_test_id("pg-save").click()
    expect(page.get_by_test_id("pg-saved")).to_contain_text("version 2")
    expect(page.get_by_test_id("version-row")).to_have_count(2)
    expect(page.get_by_test_id("version-card")).to_have_attribute("data-version", "2")
    expect(page.get_by_test_id("version-text")).to_have_text(
        "Say a warm hello to {name} in {n} words, {tone}."
    )
    expect(page.get_by_test_id("pg-draft")).to_be_hidden()
    saved = httpx.get(f"{url}/api/prompts/greet/versions/2").json()
    assert saved["message"] == "warmer, with a tone"
    assert {v["name"]: v["type"] for v in saved["variables"]} == {
        "name": "str",
        "n": "int",
        "tone": "str",
    }
    page.get_by_test_id("pg-run").click()  # version 2 itself now, values kept
    expect(page.get_by_test_id("pg-output")).to_contain_text("Hello!")
    assert sent(upstream)[-1]["messages"][0]["content"].endswith("in 3 words, kindly.")

    # the diff with version 1
    page.get_by_test_id("diff-from").select_option("1")
    page.get_by_test_id("diff-to").select_option("2")
    page.get_by_test_id("diff-run").click()
    diff = page.get_by_test_id("diff-text")
    expect(diff).to_contain_text("-Say hello to {name} in {n} words.")
    expect(diff).to_contain_text("+Say a warm hello to {name} in {n} words, {tone}.")
    expect(diff.locator(".diff-add").first).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "52-prompt-diff.png"), full_page=True)

    # move production to version 2
    head = page.get_by_test_id("prompt-labels").get_by_test_id("label-chip")
    expect(head).to_have_attribute("data-version", "1")
    page.get_by_test_id("label-name").fill("production")
    page.get_by_test_id("label-version").select_option("2")
    page.get_by_test_id("label-move").click()
    expect(head).to_have_attribute("data-version", "2")
    expect(head).to_have_text("production → 2")
    v2 = page.locator("[data-testid=version-row][data-version='2']")
    expect(v2.get_by_test_id("label-chip")).to_have_text("production")
    v1 = page.locator("[data-testid=version-row][data-version='1']")
    expect(v1.get_by_test_id("label-chip")).to_have_count(0)
    expect(page.get_by_test_id("label-history").locator("li").first).to_contain_text(
        "production → 2 (was 1)"
    )
    assert httpx.get(f"{url}/api/prompts/greet").json()["labels"] == {"production": 2}

    # a model output holding HTML is shown as text, and nothing of it runs
    upstream.app.script("/v1/chat/completions", rec.openai_text("openai", XSS))
    page.get_by_test_id("pg-run").click()
    expect(page.get_by_test_id("pg-output")).to_have_text(XSS)
    assert page.locator("#prompts-view img").count() == 0
    assert page.evaluate("window.__xss") is None

    # Chinese: the playground's words follow, what was typed and shown stays
    page.get_by_test_id("lang-toggle").click()
    expect(page.get_by_test_id("playground").locator("h2")).to_have_text("试验场")
    expect(page.get_by_test_id("pg-output")).to_have_text(XSS)
    expect(page.get_by_test_id("pg-var-tone")).to_have_value("kindly")
    expect(page.get_by_test_id("prompts-back")).to_have_text("← 全部提示词")
    assert not console_errors, console_errors


def test_a_new_prompt_starts_in_the_playground(
    page: Any, prompt_server: str, console_errors: list[str]
) -> None:
    from playwright.sync_api import expect

    page.goto(prompt_server + "/#/prompts")
    # the page draws its list first: wait for it, so the form is the one the page wired up
    expect(page.get_by_test_id("prompt-new").locator("button")).to_be_enabled()
    page.get_by_test_id("prompt-new-name").fill("support.reply")
    page.get_by_test_id("prompt-new").locator("button").click()
    expect(page.get_by_test_id("prompt-new-note")).to_contain_text("support.reply")
    page.get_by_test_id("pg-text").fill("Reply to: {message}")
    expect(page.get_by_test_id("pg-var-message")).to_be_visible()
    page.get_by_test_id("pg-save").click()
    expect(page.get_by_test_id("version-row")).to_have_count(1)
    expect(page.get_by_test_id("prompt-labels").get_by_test_id("label-chip")).to_have_text(
        "production → 1"
    )
    # a built-in prompt cannot get production on a version Hanlin cannot fill: the refusal is
    # worded from its error code
    page.goto(prompt_server + "/#/prompts/rag.answer.en")
    text = page.get_by_test_id("pg-text")
    expect(text).to_have_value(re.compile(r"\{sources\}$"))
    text.fill("Answer in a {tone} voice.\n\n{sources}")
    page.get_by_test_id("pg-save").click()
    expect(page.get_by_test_id("version-row")).to_have_count(2)
    page.get_by_test_id("label-version").select_option("2")
    page.get_by_test_id("label-move").click()
    expect(page.get_by_test_id("label-error")).to_have_text(
        "Hanlin cannot fill the variable “tone” of “rag.answer.en”: give it a default before it "
        "gets this label."
    )
    # (Chromium logs the refused request itself: the one console error expected)
    assert [e for e in console_errors if "status of 400" not in e] == [], console_errors
