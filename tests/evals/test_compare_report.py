"""Comparing runs and reporting them: the paired bootstrap interval holds the true difference,
is narrow when every example moves alike and wide when they scatter; the examples that changed
most come first; the HTML report is one self-contained page with plots, and escapes what the
runs wrote."""

from __future__ import annotations

import random
from html.parser import HTMLParser
from pathlib import Path

import pytest

from hanlin.evals.base import EvalStore, Example, ExampleResult, RunInfo
from hanlin.evals.compare import compare_runs
from hanlin.evals.report import render_report
from hanlin.evals.scorer import aggregate
from hanlin.evals.sqlite import SqliteEvalStore
from hanlin.evals.stats import mean_ci

N = 200


@pytest.fixture()
def store(tmp_path: Path) -> EvalStore:
    s = SqliteEvalStore(tmp_path / "evals.sqlite")
    examples = [Example(id=f"e{i}", question=f"question {i}?", answers=["x"]) for i in range(N)]
    s.put_dataset("synthetic", examples, "test")
    return s


def add_run(
    store: EvalStore, run_id: str, f1: list[float], outputs: list[str] | None = None
) -> None:
    store.create_run(
        RunInfo(
            id=run_id,
            name=run_id,
            dataset="synthetic@1",
            target="kb:docs",
            total=len(f1),
            config={"metrics": ["f1", "latency_ms"], "not_run": {}},
        )
    )
    results = []
    for i, value in enumerate(f1):
        result = ExampleResult(
            example_id=f"e{i}",
            position=i,
            output=(outputs or [""] * len(f1))[i],
            latency_ms=10.0 + i % 7,
            scores={"f1": value, "latency_ms": 10.0 + i % 7},
        )
        store.put_result(run_id, result)
        results.append(result)
    store.update_run(run_id, status="done", aggregates=aggregate(results, ["f1", "latency_ms"]))


def test_the_interval_holds_the_true_delta_narrow_or_wide_as_the_data_are(
    store: EvalStore,
) -> None:
    rng = random.Random(7)
    base = [rng.uniform(0.2, 0.6) for _ in range(N)]
    add_run(store, "a", base)
    add_run(store, "steady", [v + 0.1 for v in base])  # every example gains exactly 0.1
    noisy = [min(1.0, max(0.0, v + 0.1 + rng.uniform(-0.3, 0.3))) for v in base]
    add_run(store, "noisy", noisy)
    add_run(store, "few", noisy[:10])

    steady = compare_runs(store, "a", "steady").metrics[0]
    assert steady.name == "f1" and steady.n == N
    assert steady.delta == pytest.approx(0.1) and steady.hi - steady.lo < 1e-9
    assert steady.verdict == "better"

    wide = compare_runs(store, "a", "noisy").metrics[0]
    true_delta = sum(n - b for n, b in zip(noisy, base, strict=True)) / N
    assert wide.delta == pytest.approx(true_delta)
    assert wide.lo < true_delta < wide.hi and wide.lo < 0.1 < wide.hi
    assert 0.03 < wide.hi - wide.lo < 0.15 and wide.verdict == "better"
    fewer = compare_runs(store, "a", "few")
    assert fewer.paired == 10 and fewer.only_a == N - 10
    assert fewer.metrics[0].hi - fewer.metrics[0].lo > 2 * (wide.hi - wide.lo)
    # seeded: the same runs give the same interval
    assert compare_runs(store, "a", "noisy").metrics[0] == wide
    # unpaired intervals would be far wider: the paired one removes per-example difficulty
    unpaired = mean_ci(noisy)
    assert unpaired is not None and (unpaired[2] - unpaired[1]) > 0.5 * (wide.hi - wide.lo)


def test_the_examples_that_changed_most_come_first(store: EvalStore) -> None:
    base = [0.5] * N
    moved = list(base)
    moved[3], moved[17], moved[40] = 1.0, 0.0, 0.6
    add_run(store, "a", base)
    add_run(store, "b", moved)
    cmp = compare_runs(store, "a", "b", top=2)
    assert [(c.example_id, c.deltas["f1"]) for c in cmp.changed] == [("e17", -0.5), ("e3", 0.5)]
    assert cmp.changed[0].question == "question 17?"
    assert cmp.metrics[0].verdict == "same"  # three examples of 200 do not make a difference


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> _Tags:
    parser = _Tags()
    parser.feed(page)
    parser.close()
    return parser


def test_the_html_report_is_self_contained_with_plots_and_escapes_outputs(
    store: EvalStore,
) -> None:
    evil = "<script>alert('x')</script><img src=http://evil.example/x.png>"
    base = [0.4] * N
    add_run(store, "a", base, outputs=["plain"] * N)
    better = list(base)
    better[5] = 1.0
    add_run(store, "b", better, outputs=[evil] * N)

    for page in (render_report(store, "a", "b"), render_report(store, "b")):
        doc = parse(page)
        names = [t for t, _ in doc.tags]
        assert names.count("svg") == 2  # metric bars with intervals, latency histogram
        assert "rect" in names and "line" in names
        assert "script" not in names and "img" not in names and "link" not in names
        for _, attrs in doc.tags:
            for key, value in attrs.items():
                if key in ("src", "href"):
                    pytest.fail(f"the report loads {value}")
        text = "".join(doc.text)
        assert evil in text  # shown as text, not run
        assert "95%" in text and "f1" in text
    compared = "".join(parse(render_report(store, "a", "b")).text)
    assert "Examples that changed most" in compared and "question 5?" in compared
    assert "e5" in compared and "+0.60" in compared
