"""The web UI end to end in headless Chromium against the real server: create a knowledge base,
upload a document, wait for it to index, search it, ask about it in chat with a streamed answer,
open a citation, switch to Chinese. Screenshots land in ``test-artifacts/ui/``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

KB = "e2e-docs"
FACT = "PERSIMMON-4471"
QUESTION = "What is the secret password of the Qingdao lighthouse?"

DOCUMENT = f"""# Qingdao Lighthouse Handbook 青岛灯塔手册

## History 历史

The Qingdao lighthouse was built on a granite headland in 1900 and still guides ships into
the bay. Its lamp was converted from kerosene to electricity in 1954.

青岛灯塔于一九〇〇年建在花岗岩海角上，至今仍为进港的船只导航。灯塔的灯在一九五四年由煤油改为电力。

## Access 出入

The secret password of the Qingdao lighthouse is {FACT}. The keeper asks every visitor for it
at the iron gate before the tower is opened.

青岛灯塔的秘密口令是 {FACT}。看守人会在铁门前向每位访客询问口令，然后才打开塔门。

## The keeper's cat 看守人的猫

The keeper's cat sleeps on the warm lens housing every winter night and chases gulls in summer.

看守人的猫每个冬夜都睡在温暖的灯罩上，夏天则追逐海鸥。
"""


def test_upload_search_ask_cite_and_switch_language(
    page: Any, server_url: str, artifacts_dir: Path, tmp_path: Path, console_errors: list[str]
) -> None:
    from playwright.sync_api import expect

    def shot(name: str) -> None:
        page.screenshot(path=str(artifacts_dir / name))

    violations: list[str] = []  # what the page reports breaking its Content-Security-Policy
    page.expose_function("reportCsp", lambda v: violations.append(v))
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation',"
        " e => window.reportCsp(e.violatedDirective + ' ' + e.blockedURI))"
    )
    opened = page.goto(server_url + "/")
    assert opened is not None and "script-src 'self'" in opened.headers["content-security-policy"]
    expect(page.get_by_test_id("lang-toggle")).to_have_text("中文")
    expect(page.get_by_test_id("chat-empty")).to_be_visible()

    # --- create a knowledge base -------------------------------------------------------------
    page.get_by_test_id("kb-name-input").fill(KB)
    page.get_by_test_id("kb-create").click()
    expect(page.get_by_test_id("kb-title")).to_have_text(KB)
    expect(page.locator(f'[data-testid="kb-item"][data-name="{KB}"]')).to_be_visible()

    # --- upload a document and wait until it is indexed -------------------------------------
    doc = tmp_path / "qingdao-lighthouse.md"
    doc.write_text(DOCUMENT, encoding="utf-8")
    page.get_by_test_id("file-input").set_input_files(str(doc))
    item = page.locator(f'[data-testid="upload-item"][data-filename="{doc.name}"]')
    expect(item).to_be_visible()
    expect(item).to_have_attribute("data-status", "done", timeout=240_000)
    expect(page.get_by_test_id("doc-row")).to_have_count(1, timeout=20_000)
    expect(page.get_by_test_id("doc-row").first).to_contain_text("lighthouse", ignore_case=True)
    shot("01-knowledge-base-uploaded.png")

    # --- search playground: fused, keyword and dense scores side by side --------------------
    page.get_by_test_id("search-input").fill("secret password lighthouse")
    page.get_by_test_id("search-go").click()
    first = page.get_by_test_id("search-result").first
    expect(first).to_contain_text(FACT)
    for testid in ("score-fused", "score-keyword", "score-dense"):
        value = first.get_by_test_id(testid).get_attribute("data-value")
        assert value and float(value) == float(value), f"{testid} has no number: {value!r}"
    expect(first.get_by_test_id("score-keyword")).to_contain_text("rank")
    shot("02-search-hybrid.png")
    page.locator('label[for="mode-keyword"]').click()
    expect(page.get_by_test_id("search-mode-keyword")).to_be_checked()
    expect(page.get_by_test_id("search-summary")).to_be_visible()
    expect(page.get_by_test_id("search-result").first).to_contain_text(FACT)
    shot("03-search-keyword.png")

    # --- chat with kb:<name>: streamed answer, citations, side panel -------------------------
    page.get_by_test_id("kb-chat").click()
    expect(page.get_by_test_id("chat-view")).to_be_visible()
    expect(page.get_by_test_id("model-select")).to_have_value(f"kb:{KB}")
    page.get_by_test_id("chat-input").fill(QUESTION)
    with page.expect_response(re.compile(r"/v1/chat/completions$")) as resp_info:
        page.get_by_test_id("chat-input").press("Enter")
    response = resp_info.value
    assert response.status == 200
    assert response.headers.get("content-type", "").startswith("text/event-stream")

    answer = page.get_by_test_id("message-assistant").last
    expect(answer).to_have_attribute("data-status", "done", timeout=120_000)
    text = answer.get_by_test_id("answer-text")
    expect(text).to_contain_text(FACT)
    assert not re.search(r"^\[\d+\]:", text.inner_text(), re.M), "footnotes were not stripped"
    expect(answer.get_by_test_id("answer-mode")).to_be_visible()
    chips = answer.get_by_test_id("citation-chip")
    expect(chips.first).to_be_visible()

    panel = page.get_by_test_id("citation-panel")
    snippets = []
    for i in range(chips.count()):
        chips.nth(i).click()
        expect(panel).to_be_visible()
        expect(page.get_by_test_id("citation-title")).not_to_be_empty()
        snippets.append(page.get_by_test_id("citation-snippet").inner_text())
        if FACT in snippets[-1]:
            break
    assert any(FACT in s for s in snippets), f"no citation shows the fact: {snippets}"
    expect(page.get_by_test_id("citation-source")).to_contain_text("qingdao-lighthouse")
    shot("04-chat-citation.png")

    # The conversation is in the sidebar history.
    expect(page.get_by_test_id("chat-item").first).to_contain_text("secret password")

    # --- a question the document cannot answer is refused, with the closest sources ----------
    page.get_by_test_id("citation-close").click()
    expect(panel).to_be_hidden()
    page.get_by_test_id("chat-input").fill("Who won the football world cup in 1966?")
    page.get_by_test_id("chat-send").click()
    refused = page.get_by_test_id("message-assistant").nth(1)
    expect(refused).to_have_attribute("data-status", "done", timeout=120_000)
    expect(refused.get_by_test_id("refusal")).to_be_visible()
    expect(refused.get_by_test_id("answer-mode")).to_have_attribute("data-mode", "refused")
    expect(refused.get_by_test_id("citation-chip").first).to_be_visible()
    shot("05-chat-refusal.png")

    # --- Chinese UI, persisted across a reload ------------------------------------------------
    page.get_by_test_id("lang-toggle").click()
    expect(page.get_by_test_id("lang-toggle")).to_have_text("English")
    expect(page.get_by_test_id("chat-send")).to_have_text("发送")
    expect(page.locator("#kbs-heading")).to_have_text("知识库")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    shot("06-chinese.png")
    page.reload()
    expect(page.get_by_test_id("new-chat")).to_contain_text("新对话")
    page.locator(f'[data-testid="kb-item"][data-name="{KB}"] a').click()
    expect(page.get_by_role("heading", name="检索试验台")).to_be_visible()
    shot("07-chinese-knowledge-base.png")

    # --- narrow screen ------------------------------------------------------------------------
    page.set_viewport_size({"width": 390, "height": 800})
    expect(page.get_by_test_id("menu-toggle")).to_be_visible()
    page.wait_for_timeout(300)  # the sidebar slides away when the layout narrows
    shot("08-narrow.png")
    page.get_by_test_id("menu-toggle").click()
    expect(page.get_by_test_id("sidebar")).to_be_in_viewport()
    page.wait_for_timeout(300)  # the slide-in transition
    shot("09-narrow-sidebar.png")

    assert violations == [], f"the UI broke its Content-Security-Policy: {violations}"
    assert console_errors == [], f"browser console errors: {console_errors}"


def _shown_number(text: str) -> float:
    """The number in a figure as the page shows it ("34,286" → 34286.0)."""
    match = re.search(r"-?\d[\d,]*(?:\.\d+)?", text)
    assert match, f"no number in {text!r}"
    return float(match.group(0).replace(",", ""))


def test_compute_planner_train_serve_and_chinese(
    page: Any, server_url: str, artifacts_dir: Path, console_errors: list[str]
) -> None:
    from playwright.sync_api import expect

    from hanlin.compute import ServeOptions, load_model, serve_estimate, training_time

    # What the planner says for the forms' defaults, through the Python API.
    train = training_time(load_model("gpt3-175b"), 300 * 10**9, "A100-80G", 1024, mfu=0.34)
    serve = serve_estimate(
        load_model("qwen2.5-7b"), "H20", ServeOptions(context=32768, concurrency=64, quant="int8")
    )
    assert not serve.fits

    def shot(name: str) -> None:
        # The view scrolls inside the page: a tall window shows the whole result at once.
        page.set_viewport_size({"width": 1280, "height": 2000})
        page.screenshot(path=str(artifacts_dir / name))
        page.set_viewport_size({"width": 1280, "height": 800})

    page.goto(server_url + "/")
    page.get_by_test_id("compute-nav-train").click()
    expect(page.get_by_test_id("compute-view")).to_be_visible()
    expect(page.get_by_test_id("compute-tab-train")).to_have_attribute("aria-selected", "true")
    expect(page.locator('[data-testid="compute-nav"] li[data-tab="train"]')).to_have_class("active")

    # --- Train with the defaults: GPT-3 175B, 300B tokens, 1,024 × A100-80G, MFU 0.34 ----------
    panel = page.get_by_test_id("compute-panel-train")
    expect(
        panel.get_by_test_id("compute-model").locator("option[value='llama3-8b']")
    ).to_be_attached()
    expect(panel.get_by_test_id("compute-gpu-spec")).to_contain_text("80 GiB")
    expect(panel.get_by_test_id("compute-model")).to_have_value("gpt3-175b")
    expect(panel.get_by_test_id("compute-gpu")).to_have_value("A100-80G")
    with page.expect_response(re.compile(r"/api/compute/train$")) as resp_info:
        panel.get_by_test_id("compute-calc").click()
    assert resp_info.value.status == 200
    gpu_days = panel.locator('[data-testid="compute-stat"][data-key="gpu_days"]')
    expect(gpu_days).to_be_visible()
    shown = _shown_number(gpu_days.locator(".stat-value").inner_text())
    assert abs(shown - train.gpu_days) <= 1, (shown, train.gpu_days)
    assert abs(shown - 34_639) / 34_639 < 0.05, shown
    assert float(gpu_days.get_attribute("data-value") or "nan") == pytest.approx(train.gpu_days)
    # The breakdown shows the API's terms, in order, with their formulas.
    table = panel.locator('[data-testid="compute-terms"][data-section="training"]')
    rows = table.get_by_test_id("compute-term-row")
    expect(rows).to_have_count(len(train.terms))
    assert rows.locator(".term-name").all_inner_texts() == [t.name for t in train.terms]
    assert rows.locator(".term-formula").all_inner_texts() == [t.formula for t in train.terms]
    expect(panel.locator('[data-testid="compute-terms"][data-section="memory"]')).to_be_visible()
    # 175B parameters with full AdamW states do not fit on one 80 GB GPU without sharding.
    expect(panel.get_by_test_id("compute-fit")).to_have_attribute("data-fits", "false")
    expect(panel.get_by_test_id("compute-fit-hint")).to_contain_text("ZeRO")
    shot("10-compute.png")

    # --- an unknown GPU: the API's error and hint, inline -------------------------------------
    panel.get_by_test_id("compute-gpu").select_option("__custom__")
    expect(panel.get_by_test_id("compute-gpu-custom")).to_be_focused()
    panel.get_by_test_id("compute-gpu-custom").fill("A100-80")
    panel.get_by_test_id("compute-calc").click()
    error = panel.get_by_test_id("compute-error")
    expect(error).to_contain_text("unknown GPU")
    expect(panel.get_by_test_id("compute-error-hint")).to_contain_text("A100-80G")

    # --- Serve with the defaults: Qwen2.5-7B, 32k context × 64 sequences on one H20, int8 ------
    page.get_by_test_id("compute-tab-serve").click()
    expect(page).to_have_url(re.compile(r"#/compute/serve$"))
    serve_panel = page.get_by_test_id("compute-panel-serve")
    expect(serve_panel).to_be_visible()
    expect(panel).to_be_hidden()
    serve_panel.get_by_test_id("compute-calc").click()
    expect(serve_panel.get_by_test_id("compute-fit")).to_have_attribute("data-fits", "false")
    hint = serve_panel.get_by_test_id("compute-fit-hint")
    expect(hint).to_contain_text(f"At most {serve.max_concurrency} sequences")
    conc = serve_panel.locator('[data-testid="compute-stat"][data-key="max_concurrency"]')
    assert _shown_number(conc.locator(".stat-value").inner_text()) == serve.max_concurrency
    expect(serve_panel.get_by_test_id("compute-term-row")).to_have_count(len(serve.terms))
    shot("11-compute-serve.png")

    # --- Fine-tune with the defaults: LoRA on Llama-3-8B, 2 × 2,048 tokens, fits on one H20 ------
    page.get_by_test_id("compute-nav-finetune").click()
    ft_panel = page.get_by_test_id("compute-panel-finetune")
    expect(ft_panel).to_be_visible()
    ft_panel.get_by_test_id("compute-calc").click()
    expect(ft_panel.get_by_test_id("compute-fit")).to_have_attribute("data-fits", "true")
    expect(ft_panel.locator('[data-key="trainable"] .stat-value')).to_have_text("41.94M")
    page.get_by_test_id("compute-nav-serve").click()

    # --- Chinese: labels, tabs and the result re-rendered ---------------------------------------
    page.get_by_test_id("lang-toggle").click()
    expect(page.locator("#compute-heading")).to_have_text("算力")
    expect(page.locator("#compute-title")).to_have_text("算力规划")
    expect(page.get_by_test_id("compute-tab-train")).to_have_text("训练")
    expect(page.get_by_test_id("compute-tab-serve")).to_have_text("推理部署")
    expect(serve_panel.get_by_test_id("compute-calc")).to_have_text("计算")
    expect(serve_panel.locator("label[for='cp-serve-concurrency']")).to_have_text("并发序列数")
    expect(serve_panel.get_by_test_id("compute-fit")).to_contain_text("放不下")
    expect(hint).to_contain_text(f"最多容纳 {serve.max_concurrency} 个")
    page.get_by_test_id("compute-tab-train").click()
    expect(panel.get_by_test_id("compute-error")).to_contain_text("无法计算")
    panel.get_by_test_id("compute-gpu").select_option("A100-80G")
    expect(panel.get_by_test_id("compute-gpu-custom")).to_be_hidden()
    panel.get_by_test_id("compute-calc").click()
    expect(panel.locator('[data-key="gpu_days"] dt')).to_have_text("GPU·天")
    expect(panel.get_by_test_id("compute-fit")).to_contain_text("放不下")
    shot("12-compute-chinese.png")

    # The 404 for the unknown GPU is logged by Chromium as a failed resource; nothing else may be.
    unexpected = [
        e for e in console_errors if not ("status of 404" in e and "/api/compute/train" in e)
    ]
    assert unexpected == [], f"browser console errors: {unexpected}"
