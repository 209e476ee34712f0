"""The evaluation pages in headless Chromium against the real server and a real knowledge base
(the bundled embedder, extractive answers): import a dataset file with bad rows, run it and
watch its progress, check the metric cards against the API, filter the examples, run it again
with another generator (the fake model upstream), compare the two runs — deltas, intervals,
markers, the changed examples side by side — and a question holding HTML stays text.
Screenshots land in ``test-artifacts/ui/``."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hanlin.config import load_settings
from hanlin.testing.upstream import UpstreamServer
from hanlin.tracing import setup as tracing
from tests.server.conftest import build_kb

pytestmark = pytest.mark.slow
MODEL = "fake/gpt-test"
XSS = '<img src=x onerror="window.__xss = 1"> How long is oolong brewed?'
ROWS = [
    {"id": "tea-where", "question": "Where is most oolong tea grown?", "answers": ["Fujian"]},
    {
        "id": "tea-temp",
        "question": "At what temperature is oolong brewed?",
        "answers": ["90 degrees"],
    },
    {"id": "river", "question": "长江最后注入哪里？", "answers": ["东海"]},
    {"id": "tomato", "question": "What do tomatoes need?", "answers": ["full sun"]},
    {"id": "xss", "question": XSS, "answers": ["three minutes"]},
    {"id": "cup", "question": "Who won the 1998 football World Cup?", "should_refuse": True},
]


@pytest.fixture
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer() as server:
        yield server


@pytest.fixture
def eval_server(
    hanlin_home: Path, upstream: UpstreamServer, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A server with the knowledge base ``docs`` (oolong tea, the Yangtze, tomatoes) and the
    fake model upstream (it answers "Hello! How can I help you today?")."""
    (hanlin_home / "hanlin.toml").write_text(
        f'[models.endpoints.fake]\nbase_url = "{upstream.url}"\nmodels = ["gpt-test"]\n'
        "[models]\nretries = 0\n",
        encoding="utf-8",
    )
    build_kb(load_settings()).close()
    url: str = request.getfixturevalue("server_url")
    yield url
    tracing.shutdown()


def _api(url: str, path: str, **params: Any) -> Any:
    r = httpx.get(url + path, params=params, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def _score(metric: str, value: float) -> str:
    """A value as the pages show it (evals-text.js fmtScore / fmtDelta for [0, 1] metrics)."""
    return f"{value:.3f}"


def _delta(value: float) -> str:
    sign = "+" if value > 0 else "−" if value < 0 else "±"
    return f"{sign}{abs(value):.3f}"


def _start_run(page: Any, dataset: str, name: str, model: str = "") -> str:
    """Fill and send the start-a-run form; returns the new run's id (from the address)."""
    from playwright.sync_api import expect

    page.get_by_test_id("evals-nav-runs").click()
    form = page.get_by_test_id("run-form")
    expect(form.get_by_test_id("run-dataset")).to_have_value(dataset)
    form.get_by_test_id("run-target").fill("kb:docs")
    form.get_by_test_id("run-name").fill(name)
    form.get_by_test_id("run-model").fill(model)
    form.get_by_test_id("run-start").click()
    page.wait_for_url(lambda address: "/#/evals/runs/r-" in address)
    return str(page.url.rsplit("/", 1)[1])


def test_import_run_compare_and_html_stays_text(
    page: Any,
    eval_server: str,
    upstream: UpstreamServer,
    tmp_path: Path,
    artifacts_dir: Path,
    console_errors: list[str],
) -> None:
    from playwright.sync_api import expect

    url = eval_server
    violations: list[str] = []  # what breaks the page's Content-Security-Policy
    page.expose_function("reportCsp", lambda v: violations.append(v))
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation',"
        " e => window.reportCsp(e.violatedDirective + ' ' + e.blockedURI))"
    )
    page.goto(url + "/#/chat")
    page.get_by_test_id("evals-nav-datasets").click()
    expect(page.get_by_test_id("datasets-empty")).to_be_visible()

    # --- import a file with two bad rows: the good rows are stored, the bad ones listed
    data = tmp_path / "qa.jsonl"
    lines = [json.dumps(r, ensure_ascii=False) for r in ROWS] + ["{oops", '{"answers": ["x"]}']
    data.write_text("\n".join(lines) + "\n", "utf-8")
    page.get_by_test_id("dataset-file").set_input_files(str(data))
    page.get_by_test_id("dataset-import").click()
    result = page.get_by_test_id("dataset-import-result")
    expect(result).to_contain_text("qa@1 stored: 6 examples.")
    expect(result.get_by_test_id("dataset-problem")).to_have_text(
        [
            "qa.jsonl:7: not JSON (Expecting property name enclosed in double quotes)",
            "qa.jsonl:8: no question (a non-empty 'question' field)",
        ]
    )
    row = page.get_by_test_id("dataset-row").filter(has_text="qa")
    expect(row.get_by_test_id("dataset-skipped")).to_have_text("2")
    page.screenshot(path=str(artifacts_dir / "39-eval-datasets.png"), full_page=True)

    # the version's page: its examples (the HTML question as text) and the stored report
    page.get_by_test_id("dataset-import-link").click()
    expect(page.get_by_test_id("dataset-title")).to_have_text("qa@1")
    expect(page.get_by_test_id("example-row")).to_have_count(6)
    xss_row = page.locator('[data-testid="example-row"][data-id="xss"]')
    expect(xss_row.get_by_test_id("example-question")).to_have_text(XSS)
    expect(page.get_by_test_id("dataset-report").get_by_test_id("dataset-problem")).to_have_count(2)
    page.screenshot(path=str(artifacts_dir / "40-eval-dataset.png"), full_page=True)

    # --- run it on the knowledge base (extractive answers), from the dataset's page
    page.get_by_test_id("dataset-run").click()
    expect(page.get_by_test_id("run-dataset")).to_have_value("qa@1")
    run_a = _start_run(page, "qa@1", "extractive")
    expect(page.get_by_test_id("run-title")).to_have_text("extractive")
    expect(page.get_by_test_id("run-status")).to_have_attribute("data-status", "done")
    a = _api(url, f"/api/evals/runs/{run_a}")
    assert a["status"] == "done" and a["done"] == 6
    view = page.get_by_test_id("evals-view")
    expect(view).not_to_contain_text("null")
    expect(view).not_to_contain_text("undefined")
    # every metric card shows the API's mean and interval
    for name, m in a["aggregates"]["metrics"].items():
        if name in ("latency_ms", "cost_usd"):
            continue
        card = page.locator(f'[data-testid="metric-card"][data-metric="{name}"]')
        expect(card.get_by_test_id("metric-mean")).to_have_text(_score(name, m["mean"]))
        expect(card.get_by_test_id("metric-ci")).to_have_text(
            f"[{_score(name, m['lo'])}, {_score(name, m['hi'])}]"
        )
    assert a["aggregates"]["metrics"]["contains"]["mean"] > 0.5
    bars = page.get_by_test_id("latency-histogram").locator("rect[data-value]")
    assert sum(float(v) for v in bars.evaluate_all("rs => rs.map(r => r.dataset.value)")) == 6
    results = page.get_by_test_id("result-row")
    expect(results).to_have_count(6)
    xss_result = page.locator('[data-testid="result-row"][data-id="xss"]')
    expect(xss_result.get_by_test_id("result-question")).to_have_text(XSS)
    tomato = page.locator('[data-testid="result-row"][data-id="tomato"]')
    expect(tomato.get_by_test_id("result-output")).to_contain_text("full sun")
    page.screenshot(path=str(artifacts_dir / "41-eval-run.png"), full_page=True)
    # filters: the misses of `contains` (as the API counts them), then text
    misses = _api(url, f"/api/evals/runs/{run_a}/results", metric="contains", below=1)
    page.get_by_test_id("result-metric").select_option("contains")
    page.get_by_test_id("result-below").fill("1")
    page.get_by_test_id("result-apply").click()
    expect(results).to_have_count(misses["total"])
    page.get_by_test_id("result-metric").select_option("")
    page.get_by_test_id("result-below").fill("")
    page.get_by_test_id("result-q").fill("tomatoes")
    page.get_by_test_id("result-apply").click()
    expect(results).to_have_count(1)
    expect(results.first).to_have_attribute("data-id", "tomato")

    # --- the same dataset answered by the fake model, slowed so the progress can be watched
    answer = upstream.app.responder
    upstream.app.responder = lambda body: dataclasses.replace(answer(body), first_byte_delay=0.6)
    run_b = _start_run(page, "qa@1", "generative", MODEL)
    live = page.get_by_test_id("run-live")
    expect(live).to_be_visible()
    expect(live.get_by_test_id("run-progress")).to_have_attribute("data-total", "6")
    expect(page.get_by_test_id("run-status")).to_have_attribute(
        "data-status", "done", timeout=30_000
    )
    expect(live).to_be_hidden()
    upstream.app.responder = answer

    # --- pick both on the runs page and compare them
    page.get_by_test_id("evals-nav-runs").click()
    expect(page.get_by_test_id("run-row")).to_have_count(2)
    for run in (run_b, run_a):
        page.locator(f'[data-testid="run-row"][data-id="{run}"]').get_by_test_id("run-pick").check()
    page.screenshot(path=str(artifacts_dir / "44-eval-runs.png"), full_page=True)
    page.get_by_test_id("compare-picked").click()
    page.wait_for_url(lambda address: address.endswith(f"/#/evals/compare?a={run_a}&b={run_b}"))
    cmp = _api(url, "/api/evals/compare", a=run_a, b=run_b)
    rows = page.get_by_test_id("delta-row")
    expect(rows).to_have_count(len(cmp["metrics"]))
    for m in cmp["metrics"]:
        row = page.locator(f'[data-testid="delta-row"][data-metric="{m["name"]}"]')
        expect(row).to_have_attribute("data-verdict", m["verdict"])
        if m["name"] not in ("latency_ms", "cost_usd"):
            expect(row.get_by_test_id("delta-value")).to_have_text(_delta(m["delta"]))
            expect(row.get_by_test_id("delta-ci")).to_have_text(
                f"[{_delta(m['lo'])}, {_delta(m['hi'])}]"
            )
    contains = page.locator('[data-testid="delta-row"][data-metric="contains"]')
    expect(contains).to_have_attribute("data-verdict", "worse")
    expect(contains.get_by_test_id("delta-marker")).to_have_text("▼ regressed")
    ndcg = page.locator('[data-testid="delta-row"][data-metric="ndcg@10"]')
    expect(ndcg.get_by_test_id("delta-marker")).to_have_text("= no clear change")
    # the bar of a regression goes left of zero, as far as the delta says
    bar = contains.locator('[data-testid="delta-bar"] rect')
    assert float(bar.get_attribute("data-x")) < 120
    changed = page.get_by_test_id("changed-example")
    expect(changed).to_have_count(len(cmp["changed"]))
    tomato = page.locator('[data-testid="changed-example"][data-id="tomato"]')
    expect(tomato).to_have_attribute("data-direction", "regressed")
    expect(tomato.get_by_test_id("changed-question")).to_have_text("What do tomatoes need?")
    expect(tomato.get_by_test_id("changed-output-a")).to_contain_text("full sun")
    expect(tomato.get_by_test_id("changed-output-b")).to_have_text(
        "Hello! How can I help you today?"
    )
    tomato.screenshot(path=str(artifacts_dir / "45-eval-changed-example.png"))
    page.get_by_test_id("changed-filter").select_option("improved")
    expect(page.get_by_test_id("changed-none")).to_be_visible()
    page.get_by_test_id("changed-filter").select_option("regressed")
    expect(changed).to_have_count(len(cmp["changed"]))
    expect(view).not_to_contain_text("null")
    expect(view).not_to_contain_text("undefined")
    page.screenshot(path=str(artifacts_dir / "42-eval-compare.png"), full_page=True)

    # --- in Chinese
    page.get_by_test_id("lang-toggle").click()
    expect(page.get_by_test_id("compare-title")).to_have_text("比较两个运行")
    expect(contains.get_by_test_id("delta-marker")).to_have_text("▼ 变差")
    page.screenshot(path=str(artifacts_dir / "43-eval-compare-zh.png"), full_page=True)

    # the question holding HTML made no element and ran nothing, on any page
    assert page.evaluate("window.__xss") is None
    page.goto(f"{url}/#/evals/runs/{run_a}")
    expect(xss_result.get_by_test_id("result-question")).to_have_text(XSS)
    assert page.locator("#evals-view img").count() == 0
    assert page.evaluate("window.__xss") is None
    assert console_errors == []
    assert violations == []
