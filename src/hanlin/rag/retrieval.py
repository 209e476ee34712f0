"""The retrieval half of the RAG pipeline: candidates → rerank → de-duplicate → diversify →
evidence strength. Shared by :class:`hanlin.rag.engine.RagEngine` and the calibration bench."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hanlin.config import RagSettings
from hanlin.knowledge.filters import Filter
from hanlin.knowledge.kb import KnowledgeBase
from hanlin.knowledge.search import SearchResult
from hanlin.rag.base import Citation, Evidence
from hanlin.rag.refusal import Calibration, Strength, calibration_for, evidence_strength
from hanlin.rag.select import dedupe, diversify

Reranker = Callable[[str, Sequence[str]], Awaitable[list[tuple[int, float]]]]


@dataclass(slots=True)
class Retrieved:
    """Evidence for one question, best first, and whether it is strong enough to answer."""

    results: list[SearchResult]
    strength: Strength
    calibration: Calibration
    candidates: int
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def sufficient(self) -> bool:
        return bool(self.results) and self.strength.score >= self.calibration.threshold


def where(result: SearchResult) -> str:
    """A human label for a chunk: title › headings (p. N)."""
    c = result.chunk
    parts = [c.title or Path(c.source).name]
    parts += [h for h in c.heading_path if h and h != c.title]
    label = " › ".join(p for p in parts if p)
    if c.page is not None:
        pages = f"{c.page}" if c.page_end in (None, c.page) else f"{c.page}–{c.page_end}"
        label += f" (p. {pages})"
    return label


def citation(result: SearchResult, n: int, text: str | None = None) -> Citation:
    """The citation of a chunk; ``text`` is a prefix of the chunk text when it was cut to fit."""
    c = result.chunk
    snippet = c.text if text is None else text
    end = c.char_end if text is None else c.char_start + len(text)
    return Citation(
        n=n,
        chunk_id=c.id,
        doc=c.doc_key,
        source=c.source,
        title=c.title,
        heading_path=list(c.heading_path),
        page=c.page,
        page_end=c.page_end,
        char_start=c.char_start,
        char_end=end,
        snippet=snippet,
        score=result.score,
    )


def evidence(result: SearchResult, n: int, text: str | None = None) -> Evidence:
    cit = citation(result, n, text)
    return Evidence(result.chunk.id, cit.snippet, result.score, dict(result.scores), cit)


async def retrieve(
    kb: KnowledgeBase,
    query: str,
    settings: RagSettings,
    *,
    k: int | None = None,
    filters: dict[str, Any] | Filter | None = None,
    rerank: Reranker | None = None,
) -> Retrieved:
    """Hybrid search for ``query`` and the evidence selection of :mod:`hanlin.rag.select`.

    The search runs in a worker thread (SQLite and the query embedding are blocking work), so
    an event loop serving other requests is not held up.
    """
    k = k or settings.k
    n_candidates = max(settings.candidates, k)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    results = await asyncio.to_thread(
        kb.search, query, k=n_candidates, mode="hybrid", filters=filters
    )
    # sources as API clients may see them: no absolute server paths, no bidi controls
    names = await asyncio.to_thread(kb.public_names)
    names.apply(results)
    timings["retrieve"] = (time.perf_counter() - t0) * 1000
    if rerank is not None and results:
        t1 = time.perf_counter()
        ranked = await rerank(query, [r.chunk.text for r in results])
        reordered = []
        for idx, score in ranked:
            r = results[idx]
            r.scores["rerank"] = float(score)
            r.score = float(score)
            reordered.append(r)
        results = reordered
        timings["rerank"] = (time.perf_counter() - t1) * 1000
    selected = diversify(
        dedupe(results), k, per_doc_cap=settings.per_doc_cap, mmr_lambda=settings.mmr_lambda
    )
    cal = calibration_for(
        kb.embedding_model, settings.refusal_threshold, settings.refusal_dense_weight
    )
    t2 = time.perf_counter()
    strength = await asyncio.to_thread(evidence_strength, query, selected, kb.analyzer, cal)
    timings["strength"] = (time.perf_counter() - t2) * 1000
    return Retrieved(selected, strength, cal, len(results), timings)
