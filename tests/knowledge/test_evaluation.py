"""Retrieval metrics and the BEIR loader used by the benchmarks."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from hanlin.errors import InvalidInputError, NotFoundError
from hanlin.knowledge.evaluation import load_beir, ndcg_at_k, recall_at_k


def test_ndcg_known_values() -> None:
    qrels = {"a": 1, "b": 1}
    assert ndcg_at_k(["a", "b", "x"], qrels, 10) == pytest.approx(1.0)
    # one relevant at rank 2 of two relevant: (1/log2 3) / (1 + 1/log2 3)
    expected = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(["x", "a"], qrels, 10) == pytest.approx(expected)
    assert ndcg_at_k(["x", "y", "a"], qrels, 2) == 0.0  # cut off at k
    assert ndcg_at_k(["a", "a", "b"], qrels, 2) == pytest.approx(1.0)  # duplicates count once
    assert ndcg_at_k(["a"], {}, 10) == 0.0
    # graded gains: the more relevant document first is ideal
    graded = {"a": 2, "b": 1}
    assert ndcg_at_k(["a", "b"], graded, 10) == pytest.approx(1.0)
    assert ndcg_at_k(["b", "a"], graded, 10) < 1.0


def test_recall_known_values() -> None:
    qrels = {"a": 1, "b": 1, "c": 0}
    assert recall_at_k(["a", "x", "b"], qrels, 2) == 0.5
    assert recall_at_k(["a", "x", "b"], qrels, 3) == 1.0
    assert recall_at_k(["c"], qrels, 10) == 0.0  # relevance 0 is not relevant
    with pytest.raises(InvalidInputError):
        recall_at_k(["a"], qrels, 0)


def _write_beir(root: Path) -> None:
    (root / "qrels").mkdir(parents=True)
    docs = [{"_id": "d1", "title": "T", "text": "one"}, {"_id": 2, "text": "two"}]
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    queries = [{"_id": "q1", "text": "first"}, {"_id": "q2", "text": "unjudged"}]
    (root / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries) + "\n")
    (root / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\t2\t0\n")


def test_load_beir(tmp_path: Path) -> None:
    _write_beir(tmp_path)
    ds = load_beir(tmp_path)  # the only split is picked
    assert ds.corpus == {"d1": {"title": "T", "text": "one"}, "2": {"title": "", "text": "two"}}
    assert ds.queries == {"q1": "first"}  # only judged queries
    assert ds.qrels == {"q1": {"d1": 1, "2": 0}}
    assert load_beir(tmp_path, "dev").qrels == ds.qrels
    with pytest.raises(NotFoundError, match=r"test\.tsv"):
        load_beir(tmp_path, "test")
