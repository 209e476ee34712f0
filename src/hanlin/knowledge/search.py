"""Hybrid search: dense ∪ keyword candidates, fused by weighted scores or reciprocal ranks.

Weighted fusion min-max normalises each retriever's scores over the candidate union and mixes
them with ``dense_weight``; every candidate gets an exact dense score (vectors are at hand), so a
keyword-only hit is not penalised for missing from the ANN list. The defaults follow measured
retriever quality per embedding model (docs/benchmarks.md): a weak embedder gets a small weight.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from hanlin.knowledge.stores.base import StoredChunk

Mode = Literal["dense", "keyword", "hybrid"]
Fusion = Literal["weighted", "rrf"]


@dataclass(slots=True)
class SearchResult:
    """One search hit: the chunk, its final score, and each retriever's view of it."""

    chunk: StoredChunk
    score: float
    scores: dict[str, float] = field(default_factory=dict)  # raw: dense cosine, keyword BM25
    ranks: dict[str, int] = field(default_factory=dict)  # 1-based rank in each retriever's list

    def to_dict(self) -> dict[str, object]:
        c = self.chunk
        return {
            "id": c.id,
            "score": round(self.score, 6),
            "scores": {k: round(v, 6) for k, v in self.scores.items()},
            "ranks": self.ranks,
            "doc": c.doc_key,
            "source": c.source,
            "title": c.title,
            "heading_path": c.heading_path,
            "page": c.page,
            "page_end": c.page_end,
            "char_start": c.char_start,
            "char_end": c.char_end,
            "text": c.text,
            "metadata": c.metadata,
        }


def _minmax(values: dict[int, float]) -> dict[int, float]:
    if not values:
        return {}
    lo, hi = min(values.values()), max(values.values())
    span = hi - lo
    return {k: (v - lo) / span if span > 0 else 1.0 for k, v in values.items()}


def fuse(
    dense: Sequence[tuple[int, float]],
    keyword: Sequence[tuple[int, float]],
    *,
    dense_scores: dict[int, float],
    method: Fusion = "weighted",
    dense_weight: float = 0.3,
    rrf_k: int = 60,
) -> list[tuple[int, float, dict[str, float], dict[str, int]]]:
    """Fuse two ranked lists. ``dense_scores`` holds the exact cosine of every candidate.

    Returns ``(chunk_id, fused_score, raw_scores, ranks)`` best first.
    """
    dense_rank = {cid: i + 1 for i, (cid, _) in enumerate(dense)}
    kw_rank = {cid: i + 1 for i, (cid, _) in enumerate(keyword)}
    kw_score = dict(keyword)
    candidates = list(dict.fromkeys([c for c, _ in keyword] + [c for c, _ in dense]))
    fused: dict[int, float] = {}
    if method == "rrf":
        for cid in candidates:
            s = 0.0
            if cid in dense_rank:
                s += dense_weight / (rrf_k + dense_rank[cid])
            if cid in kw_rank:
                s += (1.0 - dense_weight) / (rrf_k + kw_rank[cid])
            fused[cid] = s
    else:
        d_norm = _minmax({c: dense_scores[c] for c in candidates if c in dense_scores})
        k_norm = _minmax({c: kw_score.get(c, 0.0) for c in candidates})
        for cid in candidates:
            fused[cid] = dense_weight * d_norm.get(cid, 0.0) + (1.0 - dense_weight) * k_norm[cid]
    out = []
    for cid in sorted(candidates, key=lambda c: -fused[c]):
        raw: dict[str, float] = {}
        ranks: dict[str, int] = {}
        if cid in dense_scores:
            raw["dense"] = dense_scores[cid]
        if cid in kw_score:
            raw["keyword"] = kw_score[cid]
        if cid in dense_rank:
            ranks["dense"] = dense_rank[cid]
        if cid in kw_rank:
            ranks["keyword"] = kw_rank[cid]
        out.append((cid, fused[cid], raw, ranks))
    return out
