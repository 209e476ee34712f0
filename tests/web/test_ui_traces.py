"""The trace pages in headless Chromium against the real server, with traces made by real calls
(a ``kb:`` answer, chats with a fake model upstream, one the upstream fails): rate an answer
from the chat page, find it in the trace list, narrow the list with filters, page through it,
open the waterfall and its spans, change the rating there, read the dashboard's totals — and a
recorded output holding HTML stays text. Screenshots land in ``test-artifacts/ui/``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hanlin.config import load_settings
from hanlin.testing import recordings as rec
from hanlin.testing.upstream import Reply, UpstreamServer
from hanlin.tracing import setup as tracing
from tests.server.conftest import build_kb

pytestmark = pytest.mark.slow
MODEL = "fake/gpt-test"
XSS = '<img src=x onerror="window.__xss = 1"> tea is grown in Fujian'


@pytest.fixture
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer() as server:
        yield server


@pytest.fixture
def traced_server(
    hanlin_home: Path, upstream: UpstreamServer, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A server on the fake model (priced, so calls cost something) with the knowledge base
    ``docs`` (oolong tea, the Yangtze, tomatoes)."""
    (hanlin_home / "hanlin.toml").write_text(
        f'[models]\ndefault = "{MODEL}"\nretries = 0\n\n'
        f'[models.endpoints.fake]\nbase_url = "{upstream.url}"\nmodels = ["gpt-test"]\n\n'
        f'[models.prices."{MODEL}"]\ninput = 2.0\noutput = 8.0\n',
        encoding="utf-8",
    )
    build_kb(load_settings()).close()
    url: str = request.getfixturevalue("server_url")
    yield url
    tracing.shutdown()


def _api(url: str, path: str, **params: Any) -> Any:
    assert tracing.flush(10)
    r = httpx.get(url + path, params=params, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def _ask(page: Any, model: str, question: str) -> Any:
    """Ask in a new chat; returns the answer once it is no longer streaming."""
    from playwright.sync_api import expect

    page.get_by_test_id("new-chat").click()
    page.get_by_test_id("model-select").select_option(model)
    page.get_by_test_id("chat-input").fill(question)
    page.get_by_test_id("chat-send").click()
    answer = page.get_by_test_id("message-assistant").last
    expect(answer).not_to_have_attribute("data-status", "streaming", timeout=30_000)
    expect(page.get_by_test_id("chat-send")).to_be_visible()
    return answer


def test_rate_an_answer_then_find_filter_and_open_its_trace(
    page: Any,
    traced_server: str,
    upstream: UpstreamServer,
    artifacts_dir: Path,
    console_errors: list[str],
) -> None:
    from playwright.sync_api import expect

    url = traced_server
    violations: list[str] = []  # what breaks the page's Content-Security-Policy (inline styles …)
    page.expose_function("reportCsp", lambda v: violations.append(v))
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation',"
        " e => window.reportCsp(e.violatedDirective + ' ' + e.blockedURI))"
    )
    page.goto(url + "/#/traces")
    expect(page.get_by_test_id("traces-empty")).to_have_attribute("data-empty", "none")
    expect(page.get_by_test_id("traces-empty")).to_contain_text("No traces yet")
    page.get_by_test_id("dashboard-nav").click()
    expect(page.get_by_test_id("dashboard-empty")).to_contain_text("No traffic")

    # --- real calls from the chat page: a kb: answer (rated 👎 with a comment), a chat whose
    # output holds HTML, a chat the upstream fails
    page.goto(url + "/#/chat")
    answer = _ask(page, "kb:docs", "Where is oolong tea grown?")
    expect(answer.get_by_test_id("answer-text")).not_to_be_empty()
    answer.get_by_test_id("feedback-down").click()
    expect(answer.get_by_test_id("feedback-down")).to_have_attribute("aria-pressed", "true")
    answer.get_by_test_id("feedback-comment").fill("missed Taiwan")
    answer.get_by_test_id("feedback-send").click()
    expect(answer.get_by_test_id("feedback-note")).to_have_text("missed Taiwan")
    expect(answer.get_by_test_id("feedback")).not_to_contain_text("null")
    page.screenshot(path=str(artifacts_dir / "30-chat-feedback.png"))

    upstream.app.script(
        "/v1/chat/completions", rec.openai_text_stream("openai", [XSS[:20], XSS[20:]])
    )
    shown = _ask(page, MODEL, "Where is tea grown? Answer in HTML.")
    expect(shown.get_by_test_id("answer-text")).to_contain_text("tea is grown in Fujian")
    upstream.app.script(
        "/v1/chat/completions", Reply(status=500, json={"error": {"message": "boom"}})
    )
    failed = _ask(page, MODEL, "This one fails")
    expect(failed.get_by_test_id("chat-error")).to_be_visible()

    # the rating made on the chat page is the trace's
    traces = _api(url, "/api/traces")["traces"]
    assert [t["name"] for t in traces] == [f"chat {MODEL}", f"chat {MODEL}", "answer docs"]
    answer_trace = traces[2]
    assert (answer_trace["rating"], answer_trace["comment"]) == (-1, "missed Taiwan")

    # --- the list
    page.get_by_test_id("traces-nav").click()
    rows = page.get_by_test_id("trace-row")
    expect(rows).to_have_count(3)
    expect(page.get_by_test_id("traces-nav")).to_have_attribute("aria-current", "page")
    first = rows.nth(2)
    expect(first.get_by_test_id("trace-link")).to_have_text("answer docs")
    expect(first.locator("td").nth(3)).to_have_text("docs")
    expect(first.get_by_test_id("trace-rating")).to_have_attribute("data-rating", "-1")
    expect(first.get_by_test_id("trace-rating")).to_contain_text("missed Taiwan")
    expect(rows.nth(0).get_by_test_id("trace-status")).to_have_attribute("data-status", "error")
    tokens = f"{answer_trace['input_tokens']} / {answer_trace['output_tokens']}"
    expect(first.locator("td").nth(5)).to_have_text(tokens)
    page.screenshot(path=str(artifacts_dir / "31-traces.png"), full_page=True)

    page.get_by_test_id("filter-status").select_option("error")
    expect(rows).to_have_count(1)
    assert "status=error" in page.evaluate("location.hash")
    expect(rows.first.get_by_test_id("trace-status")).to_have_attribute("data-status", "error")
    page.get_by_test_id("filter-reset").click()
    expect(rows).to_have_count(3)
    page.get_by_test_id("filter-kb").fill("docs")
    page.get_by_test_id("filter-apply").click()
    expect(rows).to_have_count(1)
    expect(rows.first.get_by_test_id("trace-link")).to_have_text("answer docs")
    page.get_by_test_id("filter-kb").fill("")
    page.get_by_test_id("filter-q").fill("HTML")
    page.get_by_test_id("filter-q").press("Enter")
    expect(rows).to_have_count(1)
    expect(rows.first.get_by_test_id("trace-status")).to_have_attribute("data-status", "ok")
    page.get_by_test_id("filter-q").fill("no such text anywhere")
    page.get_by_test_id("filter-q").press("Enter")
    expect(page.get_by_test_id("traces-empty")).to_have_attribute("data-empty", "filtered")
    page.get_by_test_id("filter-reset").click()
    expect(rows).to_have_count(3)

    # --- the waterfall of the answer: its spans in tree order, bars placed by time
    rows.nth(2).get_by_test_id("trace-link").click()
    expect(page.get_by_test_id("trace-title")).to_have_text("answer docs")
    spans = _api(url, f"/api/traces/{answer_trace['trace_id']}")["spans"]
    wf_rows = page.get_by_test_id("wf-row")
    expect(wf_rows).to_have_count(len(spans))
    names = wf_rows.get_by_test_id("wf-name").all_inner_texts()
    assert names[0] == "answer docs" and "search docs" in names and f"chat {MODEL}" in names
    by_id = {s["span_id"]: s for s in spans}
    shown_ids = wf_rows.evaluate_all("rs => rs.map(r => r.dataset.span)")
    start, end = min(s["start_ns"] for s in spans), max(s["end_ns"] for s in spans)
    seen: set[str] = set()
    bars = page.get_by_test_id("wf-bar")
    for i, span_id in enumerate(shown_ids):
        s = by_id[span_id]
        assert s["parent_id"] is None or s["parent_id"] in seen  # a parent before its children
        seen.add(span_id)
        left = float(bars.nth(i).get_attribute("data-left"))
        width = float(bars.nth(i).get_attribute("data-width"))
        assert left == pytest.approx(100 * (s["start_ns"] - start) / (end - start), abs=0.01)
        assert width == pytest.approx(100 * (s["end_ns"] - s["start_ns"]) / (end - start), abs=0.01)
    root_bar = page.locator('[data-testid="wf-row"][aria-level="1"] [data-testid="wf-bar"]')
    assert float(root_bar.get_attribute("data-left")) == 0
    assert float(root_bar.get_attribute("data-width")) > 99
    box = root_bar.bounding_box()
    search = page.locator('[data-testid="wf-row"]', has_text="search docs")
    search_box = search.get_by_test_id("wf-bar").bounding_box()
    assert box and search_box and search_box["width"] < box["width"]  # drawn to scale
    expect(page.get_by_test_id("span-name")).to_have_text("answer docs")
    expect(page.get_by_test_id("span-question")).to_have_text("Where is oolong tea grown?")
    search.click()
    expect(page.get_by_test_id("span-name")).to_have_text("search docs")
    expect(page.get_by_test_id("span-query")).to_have_text("Where is oolong tea grown?")
    expect(page.get_by_test_id("span-hits")).to_contain_text("tea.md")
    # the keyboard walks the tree: ↓ then Enter selects the next span
    search.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("span-name")).to_have_text(names[names.index("search docs") + 1])
    # ← folds a parent's children away, → unfolds them
    generate = page.locator('[data-testid="wf-row"][aria-expanded]', has_text="generate")
    generate.focus()
    page.keyboard.press("ArrowLeft")
    expect(wf_rows).to_have_count(len(spans) - 1)
    expect(generate).to_have_attribute("aria-expanded", "false")
    page.keyboard.press("ArrowRight")
    expect(wf_rows).to_have_count(len(spans))
    # the rating from the chat page is here; change it
    feedback = page.get_by_test_id("trace-feedback")
    expect(feedback.get_by_test_id("trace-thumb-down")).to_have_attribute("aria-pressed", "true")
    expect(feedback.get_by_test_id("trace-comment")).to_have_value("missed Taiwan")
    page.screenshot(path=str(artifacts_dir / "32-trace-waterfall.png"), full_page=True)
    feedback.get_by_test_id("trace-comment").fill("fine after all")
    search.click()  # selecting a span keeps the comment being typed
    expect(feedback.get_by_test_id("trace-comment")).to_have_value("fine after all")
    feedback.get_by_test_id("trace-thumb-up").click()
    expect(page.get_by_test_id("trace-feedback-note")).to_have_text("Feedback saved.")
    expect(feedback.get_by_test_id("trace-thumb-up")).to_have_attribute("aria-pressed", "true")
    expect(feedback.get_by_test_id("trace-thumb-up")).to_be_focused()
    rated = _api(url, "/api/traces", rating="1")["traces"]
    assert [(t["trace_id"], t["comment"]) for t in rated] == [
        (answer_trace["trace_id"], "fine after all")
    ]
    page.get_by_test_id("trace-back").click()
    expect(rows).to_have_count(3)

    # --- recorded HTML is text: no element is made of it, no handler runs
    rows.nth(1).get_by_test_id("trace-link").click()
    output = page.get_by_test_id("span-output")
    expect(output).to_contain_text('<img src=x onerror="window.__xss = 1">')
    expect(page.get_by_test_id("trace-view").locator("img")).to_have_count(0)
    expect(page.get_by_test_id("span-input")).to_contain_text("Answer in HTML.")
    assert page.evaluate("window.__xss") is None
    page.screenshot(path=str(artifacts_dir / "35-trace-html-as-text.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 800})
    page.wait_for_timeout(400)  # the sidebar slides away
    page.screenshot(path=str(artifacts_dir / "36-trace-narrow.png"), full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # nothing runs off the side of a phone's screen
    page.set_viewport_size({"width": 1280, "height": 800})
    # the failed call: its error is on the span
    page.go_back()
    rows.nth(0).get_by_test_id("trace-link").click()
    expect(page.get_by_test_id("span-error")).to_be_visible()
    expect(page.get_by_test_id("span-error")).to_contain_text("Error")

    # --- the dashboard: the totals the stats API gives, non-empty charts
    page.get_by_test_id("dashboard-nav").click()
    stats = _api(url, "/api/traces/stats", by="none", spans="root")["rows"]
    assert sum(r["requests"] for r in stats) == 3  # the answer, the HTML chat, the failed chat
    totals = page.get_by_test_id("dash-totals")

    def total(name: str) -> Any:
        return totals.get_by_test_id(f"dash-total-{name}").get_by_test_id("dash-total-value")

    expect(total("requests")).to_have_text("3")
    expect(total("errors")).to_have_text("1")
    tin = sum(r["input_tokens"] for r in stats)
    tout = sum(r["output_tokens"] for r in stats)
    assert tin > 0 and tout > 0
    expect(total("tokens")).to_have_text(f"{tin} / {tout}")
    cost = sum(r["cost_usd"] for r in stats)
    assert cost == pytest.approx((2.0 * tin + 8.0 * tout) / 1e6)
    expect(total("cost")).to_have_text(f"${cost:.6f}".rstrip("0"))
    for name in ("requests", "tokens", "cost"):
        assert page.get_by_test_id(f"chart-{name}").locator("rect").count() >= 1
    # one day with traffic: one p50 and one p95 point (the other 29 days have none)
    expect(page.get_by_test_id("chart-latency").locator("circle")).to_have_count(2)
    drawn = (
        page.get_by_test_id("chart-requests")
        .locator("rect")
        .evaluate_all("rs => rs.reduce((a, r) => a + Number(r.dataset.value), 0)")
    )
    assert drawn == 3
    model_row = page.locator(f'[data-testid="dash-by-model"] [data-group="{MODEL}"]')
    expect(model_row.locator("td").first).to_have_text("3")
    kb_row = page.locator('[data-testid="dash-by-kb"] [data-group="docs"]')
    expect(kb_row.locator("td").first).to_have_text("1")
    page.screenshot(path=str(artifacts_dir / "33-dashboard.png"), full_page=True)
    page.get_by_test_id("dash-count").select_option("llm")  # model calls, as the API counts them
    llm = _api(url, "/api/traces/stats", by="none", spans="llm")["rows"]
    expect(total("requests")).to_have_text(str(sum(r["requests"] for r in llm)))
    model_row.locator("a").click()  # a group opens the list filtered by it
    expect(page.get_by_test_id("filter-model")).to_have_value(MODEL)

    # --- Chinese
    page.get_by_test_id("lang-toggle").click()
    page.get_by_test_id("dashboard-nav").click()
    expect(page.get_by_test_id("dashboard-title")).to_have_text("仪表盘")
    expect(page.get_by_test_id("traces-nav")).to_have_text("追踪")
    page.screenshot(path=str(artifacts_dir / "34-dashboard-zh.png"), full_page=True)
    # the one console error: Chromium's line for the upstream failure's 502
    assert [e for e in console_errors if "status of 5" not in e] == []
    assert violations == []


def test_the_list_pages_through_the_cursor(
    page: Any, traced_server: str, console_errors: list[str]
) -> None:
    from playwright.sync_api import expect

    with httpx.Client(base_url=traced_server, timeout=30) as client:
        for i in range(53):
            r = client.post(
                "/v1/chat/completions",
                json={"model": MODEL, "messages": [{"role": "user", "content": f"q{i}"}]},
            )
            assert r.status_code == 200, r.text
    assert tracing.flush(10)
    page.goto(traced_server + "/#/traces")
    rows = page.get_by_test_id("trace-row")
    expect(rows).to_have_count(50)
    expect(page.get_by_test_id("traces-count")).to_have_text("50 traces shown")
    page.get_by_test_id("traces-more").click()
    expect(rows).to_have_count(53)
    ids = rows.evaluate_all("rs => rs.map(r => r.dataset.trace)")
    assert len(set(ids)) == 53
    expect(page.get_by_test_id("traces-more")).to_have_count(0)
    assert console_errors == []


@pytest.fixture
def keyed_server(
    hanlin_home: Path, upstream: UpstreamServer, request: pytest.FixtureRequest
) -> Iterator[tuple[str, str, str]]:
    """A server that requires API keys; yields its URL, a chat-only key and an admin key."""
    from hanlin.server.app import apikey_store

    (hanlin_home / "hanlin.toml").write_text(
        f'[models]\ndefault = "{MODEL}"\nretries = 0\n\n'
        f'[models.endpoints.fake]\nbase_url = "{upstream.url}"\nmodels = ["gpt-test"]\n\n'
        "[server]\nrequire_keys = true\n",
        encoding="utf-8",
    )
    store = apikey_store(load_settings())
    chat = store.create(["chat"], name="alice")[1]
    admin = store.create(["admin"], name="root")[1]
    url: str = request.getfixturevalue("server_url")
    yield url, chat, admin
    tracing.shutdown()


def test_a_chat_key_rates_its_own_answer_but_cannot_read_traces(
    page: Any, keyed_server: tuple[str, str, str], console_errors: list[str]
) -> None:
    from playwright.sync_api import expect

    url, chat_key, admin_key = keyed_server
    page.add_init_script(f"localStorage.setItem('hanlin.apiKey', {chat_key!r})")
    page.goto(url + "/#/chat")
    answer = _ask(page, MODEL, "Hello?")
    answer.get_by_test_id("feedback-up").click()
    expect(answer.get_by_test_id("feedback-up")).to_have_attribute("aria-pressed", "true")
    answer.get_by_test_id("feedback-close").click()
    assert tracing.flush(10)
    admin = {"Authorization": f"Bearer {admin_key}"}
    (trace,) = httpx.get(url + "/api/traces", headers=admin, timeout=10).json()["traces"]
    assert trace["rating"] == 1 and trace["key_id"]
    assert answer.get_by_test_id("feedback").get_attribute("data-trace") == trace["trace_id"]
    # the choice is kept with the conversation: still pressed after a reload
    page.reload()
    kept = page.get_by_test_id("message-assistant").last
    expect(kept.get_by_test_id("feedback-up")).to_have_attribute("aria-pressed", "true")
    # traces hold every caller's prompts: the list says who may read them
    page.get_by_test_id("traces-nav").click()
    expect(page.get_by_test_id("traces-error")).to_contain_text("only an admin API key")
    page.get_by_test_id("dashboard-nav").click()
    expect(page.get_by_test_id("dashboard-error")).to_contain_text("only an admin API key")
    # Chromium logs the 403s of the trace pages
    assert [e for e in console_errors if "status of 403" not in e] == []
