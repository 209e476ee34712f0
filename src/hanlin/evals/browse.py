"""What the HTTP API and the web pages show of stored evaluations, as plain JSON-ready data:
a dataset version with a page of its examples, a run's per-example results joined with their
questions and gold answers (filtered, a page at a time), a latency histogram, a comparison of
two runs with a verdict per metric and per changed example, and the metrics there are."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, Literal

from hanlin.errors import InvalidInputError
from hanlin.evals.base import Dataset, EvalStore, Example, ExampleResult, RunInfo
from hanlin.evals.compare import Comparison
from hanlin.evals.metrics import GROUPS, METRICS

Outcome = Literal["failed", "refused", "answered"]


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``NAME`` or ``NAME@VERSION`` → (name, version or None)."""
    name, at, version = ref.partition("@")
    if at and not version.isdigit():
        raise InvalidInputError(
            f"bad dataset version in {ref!r}", hint="use NAME or NAME@1, NAME@2 …", param="dataset"
        )
    return name, int(version) if version else None


def metrics_catalog() -> dict[str, Any]:
    """Every metric (name, group, meaning, direction, whether it needs a judge) and the groups."""
    return {
        "metrics": [asdict(m) for m in METRICS.values()],
        "groups": {group: list(names) for group, names in GROUPS.items()},
    }


def example_json(ex: Example) -> dict[str, Any]:
    return ex.model_dump(mode="json")


def dataset_page(
    store: EvalStore, dataset: Dataset, *, offset: int = 0, limit: int = 50
) -> dict[str, Any]:
    """A dataset version (with its import report), every version of its name, and the
    examples ``offset`` … ``offset + limit - 1``."""
    versions = store.datasets(dataset.info.name)
    shown = dataset.examples[offset : offset + limit]
    return {
        "dataset": dataset.info.model_dump(mode="json") | {"ref": dataset.info.ref},
        "versions": [v.model_dump(mode="json") | {"ref": v.ref} for v in versions],
        "examples": [example_json(ex) for ex in shown],
        "offset": offset,
        "limit": limit,
        "total": len(dataset.examples),
    }


def outcome_of(result: ExampleResult) -> Outcome:
    if result.error is not None:
        return "failed"
    return "refused" if result.refused else "answered"


def result_rows(
    store: EvalStore,
    run: RunInfo,
    *,
    q: str | None = None,
    outcome: Outcome | None = None,
    metric: str | None = None,
    below: float | None = None,
    offset: int = 0,
    limit: int = 50,
) -> dict[str, Any]:
    """A page of a run's results in dataset order, each with its question and gold answers.

    Filters: ``q`` (text in the id, question or output, ignoring case), ``outcome``
    (``failed``, ``refused``, ``answered``), ``metric`` with ``below`` (examples whose score of
    that metric is below the value: ``contains`` below 1 lists the misses; ``metric`` alone
    keeps the examples it applies to)."""
    if metric is not None and metric not in METRICS:
        raise InvalidInputError(
            f"unknown metric {metric!r}", hint=f"known: {', '.join(METRICS)}", param="metric"
        )
    if below is not None and metric is None:
        raise InvalidInputError("`below` needs a `metric`", hint="e.g. metric=contains&below=1")
    examples = _examples(store, run)
    needle = (q or "").casefold()
    rows = []
    for r in store.results(run.id):
        ex = examples.get(r.example_id)
        question = ex.question if ex else ""
        if needle and not any(needle in t.casefold() for t in (r.example_id, question, r.output)):
            continue
        if outcome is not None and outcome_of(r) != outcome:
            continue
        if metric is not None:
            score = r.scores.get(metric)
            if score is None or (below is not None and not score < below):
                continue
        rows.append((r, ex))
    return {
        "data": [_row(r, ex) for r, ex in rows[offset : offset + limit]],
        "offset": offset,
        "limit": limit,
        "total": len(rows),
    }


def _row(r: ExampleResult, ex: Example | None) -> dict[str, Any]:
    return r.model_dump(mode="json") | {
        "question": ex.question if ex else "",
        "answers": ex.answers if ex else [],
        "should_refuse": ex.should_refuse if ex else False,
        "outcome": outcome_of(r),
    }


def _examples(store: EvalStore, run: RunInfo) -> dict[str, Example]:
    """The examples of the dataset version a run used, by id ({} when it is gone)."""
    from hanlin.errors import NotFoundError

    name, version = parse_ref(run.dataset)
    try:
        return {ex.id: ex for ex in store.dataset(name, version).examples}
    except NotFoundError:
        return {}


def latency_histogram(values: Sequence[float], bins: int = 20) -> list[dict[str, float]]:
    """``bins`` equal-width bins from the lowest to the highest value: ``lo``, ``hi`` (ms) and
    ``count`` each; [] without values."""
    if not values:
        return []
    low, high = min(values), max(values)
    step = (high - low) / bins or 1.0
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int((v - low) / step))] += 1
    return [
        {"lo": low + i * step, "hi": low + (i + 1) * step, "count": n} for i, n in enumerate(counts)
    ]


def run_json(store: EvalStore, run: RunInfo, *, histogram: bool = False) -> dict[str, Any]:
    """A run as the API shows it; with ``histogram``, the latencies of its answered
    examples in bins (``latency_histogram``)."""
    data: dict[str, Any] = run.model_dump(mode="json")
    if histogram:
        latencies = [r.latency_ms for r in store.results(run.id) if r.error is None]
        data["latency_histogram"] = latency_histogram(latencies)
    return data


def comparison_json(cmp: Comparison, store: EvalStore | None = None) -> dict[str, Any]:
    """A comparison as JSON: both runs, each metric's means, B − A with its paired interval,
    ``verdict`` (``better`` / ``worse`` / ``same``) and direction; the changed examples with
    both outputs, their per-metric changes and ``direction`` (``improved`` / ``regressed`` /
    ``mixed``) — and, given the store, their gold answers."""
    gold: dict[str, Example] = _examples(store, cmp.run_b) if store is not None else {}
    changed = []
    for c in cmp.changed:
        total = sum(c.deltas.values())
        direction = "improved" if total > 0 else "regressed" if total < 0 else "mixed"
        ex = gold.get(c.example_id)
        changed.append(asdict(c) | {"direction": direction, "answers": ex.answers if ex else []})
    return {
        "run_a": cmp.run_a.model_dump(mode="json"),
        "run_b": cmp.run_b.model_dump(mode="json"),
        "metrics": [asdict(m) | {"verdict": m.verdict} for m in cmp.metrics],
        "changed": changed,
        "paired": cmp.paired,
        "only_a": cmp.only_a,
        "only_b": cmp.only_b,
        "notes": cmp.notes,
    }
