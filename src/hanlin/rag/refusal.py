"""When to refuse: a calibrated evidence-strength score over the retrieved chunks.

Fused hybrid scores are min-max normalised per query (the best hit is always ~1.0), so they say
nothing about whether *any* hit is relevant. The strength is built from absolute signals:

    strength = coverage + dense_weight · dense

- ``coverage``: the largest fraction of the question's content tokens (keyword-analyzer
  tokens minus question words such as 什么/哪/who/how) found in one of the top evidence chunks
  (title and heading included). It does not depend on the corpus size, unlike BM25.
- ``dense``: the best cosine similarity between the question and an evidence chunk; its scale
  depends on the embedding model, so its weight and the threshold are calibrated per model.

The numbers come from ``bench/rag_calibrate.py``: questions of DRCD, CMRC 2018 and SciFact
against their own corpus (answerable) and against the other corpora (unanswerable, including
DRCD ↔ CMRC: same language and genre, other topics). See docs/rag.md for the measurements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hanlin.knowledge.search import SearchResult
from hanlin.knowledge.tokenize import Analyzer
from hanlin.rag.extractive import text_tokens
from hanlin.rag.rewrite import QUESTION_WORDS

#: how many of the best evidence chunks are looked at
TOP_N = 5


@dataclass(frozen=True, slots=True)
class Calibration:
    """Refuse when ``coverage + dense_weight * dense < threshold``."""

    dense_weight: float
    threshold: float
    source: str


#: per embedding model, from bench/rag_calibrate.py (balanced accuracy on held-out questions)
CALIBRATED: dict[str, Calibration] = {
    "fast-use": Calibration(0.5, 0.515, "bench/rag_calibrate.py, fast-use"),
}
#: models without a calibration: coverage alone (measured with the same data)
COVERAGE_ONLY = Calibration(0.0, 0.312, "bench/rag_calibrate.py, coverage only")


def calibration_for(
    embedding_model: str, threshold: float | None = None, dense_weight: float | None = None
) -> Calibration:
    """The calibration for a knowledge base's embedding model, with settings overriding it."""
    cal = CALIBRATED.get(embedding_model, COVERAGE_ONLY)
    if threshold is None and dense_weight is None:
        return cal
    return Calibration(
        cal.dense_weight if dense_weight is None else dense_weight,
        cal.threshold if threshold is None else threshold,
        "settings (rag.refusal_threshold / rag.refusal_dense_weight)",
    )


def content_tokens(question: str, analyzer: Analyzer) -> list[str]:
    """The question's keyword tokens without question words (all of them if nothing is left)."""
    tokens = list(dict.fromkeys(analyzer.analyze(question)))
    qwords = _analyzed_question_words(analyzer)
    content = [t for t in tokens if t not in qwords]
    return content or tokens


_QW_CACHE: dict[str, frozenset[str]] = {}


def _analyzed_question_words(analyzer: Analyzer) -> frozenset[str]:
    key = analyzer.version
    words = _QW_CACHE.get(key)
    if words is None:
        words = frozenset(analyzer.analyze(" ".join(sorted(QUESTION_WORDS))))
        _QW_CACHE[key] = words
    return words


@dataclass(frozen=True, slots=True)
class Strength:
    coverage: float
    dense: float
    score: float


def evidence_strength(
    question: str,
    results: Sequence[SearchResult],
    analyzer: Analyzer,
    calibration: Calibration,
) -> Strength:
    """Coverage, best dense cosine and their calibrated sum over the top results."""
    top = list(results[:TOP_N])
    if not top:
        return Strength(0.0, 0.0, 0.0)
    content = content_tokens(question, analyzer)
    coverage = 0.0
    if content:
        for r in top:
            c = r.chunk
            chunk_tokens = text_tokens(c.text, analyzer) | text_tokens(
                "\n".join([c.title, *c.heading_path]), analyzer
            )
            hit = sum(1 for t in content if t in chunk_tokens)
            coverage = max(coverage, hit / len(content))
    dense = max((r.scores.get("dense", 0.0) for r in top), default=0.0)
    return Strength(coverage, dense, coverage + calibration.dense_weight * dense)
