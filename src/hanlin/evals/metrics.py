"""The metrics of an evaluation: what each one means, and the per-example scoring of those
that need no judge — retrieval (nDCG@10, recall@k, MRR), answers (exact match, token F1,
contains), refusal, and tool calls. Citation metrics are in :mod:`hanlin.evals.citations`,
judged ones in :mod:`hanlin.evals.judge`; latency and cost are measured by the runner.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hanlin.errors import InvalidInputError
from hanlin.evals.base import Example, ExpectedCall
from hanlin.evals.scoring import best_of, contains_answer, exact_match, f1_score
from hanlin.knowledge.evaluation import ndcg_at_k, recall_at_k


@dataclass(frozen=True, slots=True)
class Metric:
    """A metric's name (as ``--metrics``, ``--fail-under`` and reports show it), its group,
    what it means, and how to read it."""

    name: str
    group: str
    description: str
    higher_is_better: bool = True
    #: a per-example value in [0, 1] (averaged); False for latency and cost
    unit_interval: bool = True
    needs_judge: bool = False


_ALL = [
    Metric(
        "ndcg@10", "retrieval", "nDCG of the top 10 retrieved (qrels, else answer-bearing chunks)"
    ),
    Metric("recall@5", "retrieval", "share of relevant documents in the top 5 (answers only: any)"),
    Metric(
        "recall@10", "retrieval", "share of relevant documents in the top 10 (answers only: any)"
    ),
    Metric("mrr@10", "retrieval", "1 / rank of the first relevant result in the top 10"),
    Metric("exact_match", "answer", "the answer equals a gold answer (SQuAD + CJK normalised)"),
    Metric("f1", "answer", "token F1 with a gold answer (each CJK character a token)"),
    Metric("contains", "answer", "a normalised gold answer occurs in the answer"),
    Metric(
        "citation_recall",
        "citation",
        "share of answer sentences whose cited passages support them (ALCE; judged)",
        needs_judge=True,
    ),
    Metric(
        "citation_precision",
        "citation",
        "share of citations that support their sentence or are needed for it (ALCE; judged)",
        needs_judge=True,
    ),
    Metric(
        "citation_recall_lexical",
        "citation",
        "citation recall with a lexical proxy for support (no judge: a rough guide only)",
    ),
    Metric(
        "citation_precision_lexical",
        "citation",
        "citation precision with a lexical proxy for support (no judge: a rough guide only)",
    ),
    Metric(
        "answer_correct",
        "judge",
        "the judge finds the answer correct against the gold answers",
        needs_judge=True,
    ),
    Metric("refusal_accuracy", "refusal", "refuses exactly the questions it should"),
    Metric("tool_call_accuracy", "tools", "every expected tool call made, no other tool called"),
    Metric("tool_call_recall", "tools", "share of expected tool calls made"),
    Metric("tool_call_precision", "tools", "share of tool calls made that were expected"),
    Metric(
        "latency_ms",
        "latency",
        "wall-clock time per example (p50 / p95 in the aggregates)",
        higher_is_better=False,
        unit_interval=False,
    ),
    Metric(
        "cost_usd",
        "cost",
        "model cost per example, from the gateway's prices (total in the aggregates)",
        higher_is_better=False,
        unit_interval=False,
    ),
]
METRICS: dict[str, Metric] = {m.name: m for m in _ALL}
GROUPS: dict[str, list[str]] = {}
for _m in _ALL:
    GROUPS.setdefault(_m.group, []).append(_m.name)
#: aggregate-only numbers a gate (``--fail-under`` / ``--fail-over``) may name
AGGREGATES = ("latency_p50_ms", "latency_p95_ms", "cost_usd_total", "error_rate")


def select_metrics(spec: str | Sequence[str] | None, available: Sequence[str]) -> list[str]:
    """The metrics named by ``--metrics`` (names or groups, comma-separated), among those the
    target can produce; all of ``available`` when ``spec`` is empty."""
    if not spec:
        return list(available)
    items = [p.strip() for p in (spec.split(",") if isinstance(spec, str) else spec)]
    chosen: list[str] = []
    for item in filter(None, items):
        if item in GROUPS:
            names = [n for n in GROUPS[item] if n in available]
        elif item in METRICS:
            names = [item] if item in available else []
        else:
            known = ", ".join([*GROUPS, *METRICS])
            raise InvalidInputError(f"unknown metric {item!r}", hint=f"known: {known}")
        if not names:
            raise InvalidInputError(
                f"this target cannot produce {item}", hint=f"it measures: {', '.join(available)}"
            )
        chosen += [n for n in names if n not in chosen]
    return chosen


# -- retrieval --------------------------------------------------------------------------------


def doc_ids(hit: dict[str, Any]) -> list[str]:
    """The names a retrieved chunk's document answers to in qrels: its record id (the part
    of the document key after ``#``, a BEIR corpus ``_id``), its key, its file name and stem."""
    key = str(hit.get("doc") or "")
    source = str(hit.get("source") or "")
    names = [key.rsplit("#", 1)[1]] if "#" in key else []
    names.append(key)
    if source:
        file = source.replace("\\", "/").rsplit("/", 1)[-1]
        names += [file, file.rsplit(".", 1)[0]]
    return [n for n in dict.fromkeys(names) if n]


def retrieval_scores(hits: list[dict[str, Any]], ex: Example) -> dict[str, float | None]:
    """nDCG@10, recall@5/@10 and MRR@10 of the ranked ``hits`` (each ``doc``/``source``/
    ``text``). With qrels, documents are judged by them (graded gains, BEIR's definitions).
    With gold answers only, a chunk is relevant when it contains one: recall@k is then 1
    when any of the top k does (top-k accuracy), and nDCG's ideal is the retrieved list's."""
    if ex.relevant:
        ranked = []
        for hit in hits:
            names = doc_ids(hit)
            ranked.append(next((n for n in names if n in ex.relevant), names[0] if names else ""))
        first = next(
            (i for i, d in enumerate(dict.fromkeys(ranked)) if ex.relevant.get(d, 0) > 0), None
        )
        return {
            "ndcg@10": ndcg_at_k(ranked, ex.relevant, 10),
            "recall@5": recall_at_k(ranked, ex.relevant, 5),
            "recall@10": recall_at_k(ranked, ex.relevant, 10),
            "mrr@10": 1 / (first + 1) if first is not None and first < 10 else 0.0,
        }
    if ex.answers:
        gains = [best_of(contains_answer, str(h.get("text", "")), ex.answers) for h in hits[:10]]
        ideal = sum(1 / math.log2(i + 2) for i in range(int(sum(gains))))
        dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
        first = next((i for i, g in enumerate(gains) if g > 0), None)
        return {
            "ndcg@10": dcg / ideal if ideal else 0.0,
            "recall@5": float(any(gains[:5])),
            "recall@10": float(any(gains)),
            "mrr@10": 1 / (first + 1) if first is not None else 0.0,
        }
    return dict.fromkeys(GROUPS["retrieval"])


# -- answers, refusal, tools ------------------------------------------------------------------


def answer_scores(text: str, ex: Example) -> dict[str, float | None]:
    """Exact match, F1 and contains against the best-matching gold answer (None without)."""
    if not ex.answers:
        return dict.fromkeys(GROUPS["answer"])
    return {
        "exact_match": best_of(exact_match, text, ex.answers),
        "f1": best_of(f1_score, text, ex.answers),
        "contains": best_of(contains_answer, text, ex.answers),
    }


def refusal_score(refused: bool | None, ex: Example) -> float | None:
    """1.0 when the target refused exactly if it should (None: it does not report refusals,
    or the example has no gold either way)."""
    if refused is None or not (ex.should_refuse or ex.answers or ex.relevant):
        return None
    return float(refused == ex.should_refuse)


def tool_scores(calls: list[dict[str, Any]], ex: Example) -> dict[str, float | None]:
    """Accuracy, recall and precision of the tool calls made against ``expected_tools``: an
    expected call is matched by an unmatched call of that tool whose arguments include the
    expected ones (compared as JSON values)."""
    expected = ex.expected_tools
    if expected is None:
        return dict.fromkeys(GROUPS["tools"])
    unused = list(range(len(calls)))
    matched = 0
    for want in expected:
        for i in unused:
            if _matches(calls[i], want):
                unused.remove(i)
                matched += 1
                break
    names = {w.name for w in expected}
    recall = matched / len(expected) if expected else float(not calls)
    precision = (len(calls) - len(unused)) / len(calls) if calls else float(not expected)
    exact = matched == len(expected) and all(c.get("name") in names for c in calls)
    return {
        "tool_call_accuracy": float(exact),
        "tool_call_recall": recall,
        "tool_call_precision": precision,
    }


def _matches(call: dict[str, Any], want: ExpectedCall) -> bool:
    if call.get("name") != want.name:
        return False
    args = call.get("arguments")
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError:
            return not want.arguments
    if not isinstance(args, dict):
        return not want.arguments
    return all(_same(args.get(k), v) for k, v in want.arguments.items())


def _same(got: Any, want: Any) -> bool:
    if isinstance(got, str) and isinstance(want, str):
        return got.strip().casefold() == want.strip().casefold()
    return bool(json.dumps(got, sort_keys=True) == json.dumps(want, sort_keys=True))
