"""The metrics against hand-computed values on tiny cases: answer scores with CJK tokens,
retrieval from qrels and from answers alone, refusal, tool calls, ALCE citation precision and
recall, the judge's verdict parsing, and the gates CI relies on."""

from __future__ import annotations

import math

import pytest

from hanlin.errors import InvalidInputError
from hanlin.evals.base import Example
from hanlin.evals.citations import Unjudged, citation_scores, lexical_support, statements
from hanlin.evals.judge import parse_verdict
from hanlin.evals.metrics import (
    answer_scores,
    doc_ids,
    refusal_score,
    retrieval_scores,
    select_metrics,
    tool_scores,
)
from hanlin.evals.scorer import check_gates, parse_gates


def ex(**kw: object) -> Example:
    return Example.model_validate({"id": "e", "question": "q?", **kw})


def test_cjk_characters_are_tokens_for_f1_and_squad_normalisation_applies() -> None:
    # 巴黎市 vs 巴黎: 2 tokens in common; precision 2/3, recall 1 → F1 0.8
    scores = answer_scores("巴黎市", ex(answers=["巴黎"]))
    assert scores["f1"] == pytest.approx(0.8)
    assert scores["exact_match"] == 0.0 and scores["contains"] == 1.0
    # full-width punctuation, spaces between characters, articles and case are normalised away
    assert answer_scores("巴 黎。", ex(answers=["巴黎"]))["exact_match"] == 1.0
    assert answer_scores("The Black Sea.", ex(answers=["black sea"]))["exact_match"] == 1.0
    # several gold answers: the best match counts
    best = answer_scores("It is 4 minutes", ex(answers=["four minutes", "4 minutes"]))
    assert best["contains"] == 1.0 and best["f1"] == pytest.approx(2 * 2 / 4 / (2 / 4 + 1))
    assert answer_scores("anything", ex()) == dict.fromkeys(("exact_match", "f1", "contains"))


def test_retrieval_with_qrels_uses_graded_gains_over_documents() -> None:
    hits = [
        {"doc": "corpus.jsonl#d3", "text": ""},
        {"doc": "corpus.jsonl#d1", "text": ""},
        {"doc": "corpus.jsonl#d1", "text": ""},  # a second chunk of d1 counts once
        {"doc": "corpus.jsonl#d2", "text": ""},
    ]
    scores = retrieval_scores(hits, ex(relevant={"d1": 1, "d2": 2}))
    dcg = 1 / math.log2(3) + 2 / math.log2(4)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert scores["ndcg@10"] == pytest.approx(dcg / idcg)
    assert scores["mrr@10"] == 0.5 and scores["recall@5"] == 1.0 and scores["recall@10"] == 1.0
    late = [{"doc": f"x#n{i}"} for i in range(5)] + [{"doc": "x#d1"}]
    assert retrieval_scores(late, ex(relevant={"d1": 1}))["recall@5"] == 0.0
    assert retrieval_scores(late, ex(relevant={"d1": 1}))["recall@10"] == 1.0


def test_retrieval_without_qrels_counts_chunks_holding_a_gold_answer() -> None:
    hits = [{"text": t} for t in ("nothing here", "巴黎是首都", "unrelated", "首都：巴黎")]
    scores = retrieval_scores(hits, ex(answers=["巴黎"]))
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    assert scores["ndcg@10"] == pytest.approx(dcg / (1 + 1 / math.log2(3)))
    assert scores["mrr@10"] == 0.5 and scores["recall@5"] == 1.0
    assert retrieval_scores(hits, ex())["ndcg@10"] is None  # no gold: not scored


def test_a_document_answers_to_its_record_id_key_and_file_name() -> None:
    assert doc_ids({"doc": "/data/corpus.jsonl#TRIAL_800", "source": "/data/corpus.jsonl"})[0] == (
        "TRIAL_800"
    )
    assert "handbook" in doc_ids({"doc": "handbook.md", "source": "docs/handbook.md"})


def test_refusal_and_tool_calls() -> None:
    assert refusal_score(True, ex(should_refuse=True)) == 1.0
    assert refusal_score(True, ex(answers=["x"])) == 0.0
    assert refusal_score(False, ex(should_refuse=True)) == 0.0
    assert refusal_score(None, ex(answers=["x"])) is None  # the target does not report them
    want = ex(expected_tools=[{"name": "calculator", "arguments": {"expression": "2*3"}}])
    calls = [
        {"name": "calculator", "arguments": '{"expression": "2*3"}'},
        {"name": "current_time", "arguments": "{}"},
    ]
    assert tool_scores(calls, want) == {
        "tool_call_accuracy": 0.0,  # an unexpected tool was called
        "tool_call_recall": 1.0,
        "tool_call_precision": 0.5,
    }
    assert tool_scores(calls[:1], want)["tool_call_accuracy"] == 1.0
    wrong_args = [{"name": "calculator", "arguments": '{"expression": "2+3"}'}]
    assert tool_scores(wrong_args, want)["tool_call_recall"] == 0.0
    assert tool_scores([], ex(expected_tools=[]))["tool_call_accuracy"] == 1.0


def test_alce_citation_recall_and_precision_by_hand() -> None:
    answer = "Paris is the capital [1][2]. It lies on the Seine [3]. It is old."
    passages = {1: "P1", 2: "P2", 3: "P3"}
    verdicts = {
        ("P1\n\nP2", "Paris is the capital."): True,
        ("P1", "Paris is the capital."): True,
        ("P2", "Paris is the capital."): False,  # alone it does not support …
        ("P3", "It lies on the Seine."): False,
    }
    scores = citation_scores(answer, passages, lambda p, c: verdicts[(p, c)])
    # 3 statements, 1 supported; 3 citations: [1] precise, [2] irrelevant (P1 without it
    # still supports the sentence), [3] on an unsupported sentence
    assert scores == {"recall": pytest.approx(1 / 3), "precision": pytest.approx(1 / 3)}
    with pytest.raises(Unjudged):
        citation_scores(answer, passages, lambda p, c: None)
    assert citation_scores("", passages, lambda p, c: True) is None


def test_statements_attach_trailing_markers_and_skip_intro_lines() -> None:
    found = statements("资料原文摘录：\n「法国的首都是巴黎。」[1]\n“It flows east.” [1][2]")
    assert [(s.text, s.cites) for s in found] == [
        ("法国的首都是巴黎。", [1]),
        ("It flows east.", [1, 2]),
    ]


def test_the_lexical_proxy_passes_quotes_and_fails_unrelated_claims() -> None:
    passage = "The Danube rises in the Black Forest and flows into the Black Sea."
    assert lexical_support(passage, "The Danube flows into the Black Sea.")
    assert not lexical_support(passage, "Vienna hosts an annual film festival.")
    assert lexical_support("法国的首都是巴黎。巴黎很大。", "法国的首都是巴黎")


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ('{"supported": true}', True),
        ('Sure. {"supported": false} Hope that helps', False),
        ("Yes.", True),
        ("banana", None),
        ('{"supported": "maybe"}', None),
        ("", None),
        ('{"supported": tru', None),
    ],
)
def test_judge_replies_that_are_not_a_clear_verdict_are_none(
    reply: str, verdict: bool | None
) -> None:
    assert parse_verdict(reply, "supported") is verdict


def test_gates_name_the_metric_its_value_and_the_bar() -> None:
    aggs = {"metrics": {"f1": {"mean": 0.42}}, "latency_p95_ms": 900.0}
    failed = check_gates(aggs, parse_gates(["f1=0.5", "contains=0.1"]), {"latency_p95_ms": 500})
    assert failed == [
        "f1 = 0.4200 is below the bar 0.5",
        "contains was not measured in this run (bar 0.1)",
        "latency_p95_ms = 900.0000 is above the limit 500",
    ]
    assert check_gates(aggs, {"f1": 0.4}, {}) == []
    with pytest.raises(InvalidInputError, match="unknown metric 'f2'"):
        parse_gates(["f2=0.5"])
    with pytest.raises(InvalidInputError, match="metric=value"):
        parse_gates(["f1>0.5"])


def test_metrics_are_chosen_by_name_or_group_among_what_the_target_measures() -> None:
    available = ["ndcg@10", "recall@5", "recall@10", "mrr@10", "f1", "contains", "exact_match"]
    assert select_metrics("retrieval,f1", available) == [
        "ndcg@10",
        "recall@5",
        "recall@10",
        "mrr@10",
        "f1",
    ]
    assert select_metrics(None, available) == available
    with pytest.raises(InvalidInputError, match="cannot produce"):
        select_metrics("tools", available)
    with pytest.raises(InvalidInputError, match="unknown metric"):
        select_metrics("bleu", available)
