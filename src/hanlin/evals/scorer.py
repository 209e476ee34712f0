"""Scoring one example's output, and a run's aggregates: each metric's mean with a bootstrap
95% interval over the examples it applies to, latency percentiles, total cost, errors and
unjudged examples — and the gates of ``--fail-under`` / ``--fail-over``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hanlin.errors import InvalidInputError
from hanlin.evals.base import Example, ExampleResult
from hanlin.evals.citations import Unjudged, citation_scores, lexical_support
from hanlin.evals.judge import Judge
from hanlin.evals.metrics import (
    AGGREGATES,
    GROUPS,
    METRICS,
    answer_scores,
    refusal_score,
    retrieval_scores,
    tool_scores,
)
from hanlin.evals.stats import mean_ci, percentile
from hanlin.evals.targets import Output

#: at most this much of a retrieved chunk is kept with a result (the report shows it)
_SNIPPET = 300


def score(
    position: int, ex: Example, out: Output, metrics: Sequence[str], judge: Judge | None
) -> ExampleResult:
    """The result of ``out`` on ``ex``: the selected metrics (None where one does not apply
    or the judge gave no verdict) and the details a report shows."""
    wanted = set(metrics)
    scores: dict[str, float | None] = {}
    details: dict[str, Any] = {"notes": out.notes} if out.notes else {}
    if out.hits is not None and wanted & set(GROUPS["retrieval"]):
        scores |= retrieval_scores(out.hits, ex)
        details["retrieved"] = [
            {"doc": h.get("doc"), "text": str(h.get("text", ""))[:_SNIPPET]} for h in out.hits
        ]
    if wanted & set(GROUPS["answer"]):
        scores |= answer_scores("" if out.error else out.text, ex)
    if "refusal_accuracy" in wanted:
        scores["refusal_accuracy"] = refusal_score(None if out.error else out.refused, ex)
    if out.tool_calls is not None and wanted & set(GROUPS["tools"]):
        scores |= tool_scores(out.tool_calls, ex)
        details["tool_calls"] = out.tool_calls
    unjudged = False
    cites = out.passages is not None and not out.refused and not out.error
    if cites and out.passages is not None:
        details["citations"] = {str(n): p[:_SNIPPET] for n, p in out.passages.items()}
        if {"citation_recall_lexical", "citation_precision_lexical"} & wanted:
            found = citation_scores(out.text, out.passages, lexical_support)
            scores["citation_recall_lexical"] = found["recall"] if found else None
            scores["citation_precision_lexical"] = found["precision"] if found else None
        if judge is not None and {"citation_recall", "citation_precision"} & wanted:
            try:
                found = citation_scores(out.text, out.passages, judge.supports)
            except Unjudged:
                found, unjudged = None, True
            scores["citation_recall"] = found["recall"] if found else None
            scores["citation_precision"] = found["precision"] if found else None
    if judge is not None and "answer_correct" in wanted and ex.answers:
        verdict = False if out.error else judge.correct(ex.question, ex.answers, out.text)
        unjudged = unjudged or verdict is None
        scores["answer_correct"] = None if verdict is None else float(verdict)
    if unjudged:
        details["unjudged"] = True
    if "latency_ms" in wanted:
        scores["latency_ms"] = out.latency_ms
    if "cost_usd" in wanted:
        scores["cost_usd"] = out.cost_usd
    return ExampleResult(
        example_id=ex.id,
        position=position,
        output=out.text,
        refused=out.refused,
        error=out.error,
        latency_ms=out.latency_ms,
        cost_usd=out.cost_usd,
        prompt_tokens=out.usage.prompt_tokens,
        completion_tokens=out.usage.completion_tokens,
        scores={k: v for k, v in scores.items() if k in wanted},
        details=details,
    )


def aggregate(results: Sequence[ExampleResult], metrics: Sequence[str]) -> dict[str, Any]:
    """Per metric: mean, its 95% bootstrap interval and the examples it applies to; the
    latency p50/p95, total cost, error rate, refusal mistakes and unjudged examples."""
    per_metric: dict[str, dict[str, float | int]] = {}
    for name in metrics:
        values = [v for r in results if (v := r.scores.get(name)) is not None]
        found = mean_ci(values)
        if found is not None:
            mean, lo, hi = found
            per_metric[name] = {"mean": mean, "lo": lo, "hi": hi, "n": len(values)}
    latencies = [r.latency_ms for r in results if r.error is None]
    n = len(results)
    errors = sum(r.error is not None for r in results)
    return {
        "n": n,
        "errors": errors,
        "error_rate": errors / n if n else 0.0,
        "unjudged": sum(bool(r.details.get("unjudged")) for r in results),
        "metrics": per_metric,
        "latency_p50_ms": percentile(latencies, 50),
        "latency_p95_ms": percentile(latencies, 95),
        "cost_usd_total": sum(r.cost_usd for r in results),
        "false_refusals": sum(
            r.refused is True and r.scores.get("refusal_accuracy") == 0.0 for r in results
        ),
        "missed_refusals": sum(
            r.refused is False and r.scores.get("refusal_accuracy") == 0.0 for r in results
        ),
    }


def value_of(aggregates: dict[str, Any], name: str) -> float | None:
    """A metric's mean, or an aggregate-only number (``latency_p95_ms`` …); None if absent."""
    if name in aggregates.get("metrics", {}):
        return float(aggregates["metrics"][name]["mean"])
    value = aggregates.get(name) if name in AGGREGATES else None
    return None if value is None else float(value)


def parse_gates(items: Sequence[str]) -> dict[str, float]:
    """``["ndcg@10=0.6", "f1=0.5"]`` → ``{"ndcg@10": 0.6, "f1": 0.5}``; names are checked."""
    gates: dict[str, float] = {}
    for item in items:
        name, sep, bar = item.partition("=")
        name = name.strip()
        try:
            value = float(bar)
        except ValueError:
            value = float("nan")
        if not sep or value != value:
            raise InvalidInputError(
                f"cannot read the gate {item!r}", hint="write it as metric=value, e.g. f1=0.6"
            )
        if name not in METRICS and name not in AGGREGATES:
            raise InvalidInputError(
                f"unknown metric {name!r} in a gate",
                hint=f"known: {', '.join([*METRICS, *AGGREGATES])}",
            )
        gates[name] = value
    return gates


def check_gates(
    aggregates: dict[str, Any], under: dict[str, float], over: dict[str, float]
) -> list[str]:
    """The failed gates, each worded with the metric, its value and the bar."""
    failed = []
    for name, bar in under.items():
        value = value_of(aggregates, name)
        if value is None:
            failed.append(f"{name} was not measured in this run (bar {bar:g})")
        elif value < bar:
            failed.append(f"{name} = {value:.4f} is below the bar {bar:g}")
    for name, bar in over.items():
        value = value_of(aggregates, name)
        if value is None:
            failed.append(f"{name} was not measured in this run (limit {bar:g})")
        elif value > bar:
            failed.append(f"{name} = {value:.4f} is above the limit {bar:g}")
    return failed
