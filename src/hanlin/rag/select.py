"""From search candidates to evidence: de-duplication, diversity, and packing to a token budget.

- De-duplication drops a candidate that overlaps a better one from the same document by at
  least half of the shorter character span (chunk overlap, re-ingested copies) or whose text is
  nearly identical to a better one anywhere (the same paragraph in two files): Jaccard
  similarity of character 4-gram shingles ≥ ``near_duplicate``.
- Diversity: at most ``per_doc_cap`` chunks per document, and maximal marginal relevance
  (``mmr_lambda``) over word-set similarity, so the evidence does not say the same thing k times.
- Packing: evidence in rank order while it fits the token budget (first fit); the best chunk
  always goes in, cut at a sentence boundary when it alone is larger than the budget.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from functools import lru_cache

from hanlin.knowledge.search import SearchResult

_STRIP_RE = re.compile(r"[\W_]+", re.UNICODE)


@lru_cache(maxsize=8192)
def shingles(text: str, n: int = 4) -> frozenset[str]:
    """Character n-grams of the text with case, width, spaces and punctuation normalised away."""
    norm = _STRIP_RE.sub("", unicodedata.normalize("NFKC", text).lower())
    if len(norm) <= n:
        return frozenset([norm]) if norm else frozenset()
    return frozenset(norm[i : i + n] for i in range(len(norm) - n + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


def span_overlap(a: SearchResult, b: SearchResult) -> float:
    """Overlap of two chunks of the same document as a fraction of the shorter span."""
    ca, cb = a.chunk, b.chunk
    if ca.doc_key != cb.doc_key:
        return 0.0
    inter = min(ca.char_end, cb.char_end) - max(ca.char_start, cb.char_start)
    shorter = min(ca.char_end - ca.char_start, cb.char_end - cb.char_start)
    if inter <= 0 or shorter <= 0:
        return 0.0
    return inter / shorter


def dedupe(
    results: Sequence[SearchResult], *, min_overlap: float = 0.5, near_duplicate: float = 0.8
) -> list[SearchResult]:
    """Drop candidates that repeat a better-ranked one (input best first; order kept)."""
    kept: list[SearchResult] = []
    kept_sh: list[frozenset[str]] = []
    for r in results:
        sh = shingles(r.chunk.text)
        if any(span_overlap(r, k) >= min_overlap for k in kept):
            continue
        if any(jaccard(sh, ks) >= near_duplicate for ks in kept_sh):
            continue
        kept.append(r)
        kept_sh.append(sh)
    return kept


def diversify(
    results: Sequence[SearchResult],
    k: int,
    *,
    per_doc_cap: int = 3,
    mmr_lambda: float = 0.8,
    tokens: Callable[[str], Sequence[str]] | None = None,
) -> list[SearchResult]:
    """Pick ``k`` results by maximal marginal relevance with a per-document cap.

    Relevance is the fused score scaled to 0..1 over the candidates; similarity is the Jaccard
    index of word sets (``tokens``; character shingles when not given). ``mmr_lambda`` 1.0
    keeps the ranking as it is, apart from the cap.
    """
    if not results:
        return []
    hi = max(r.score for r in results)
    lo = min(r.score for r in results)
    span = hi - lo

    def rel(r: SearchResult) -> float:
        return (r.score - lo) / span if span > 0 else 1.0

    sets = [frozenset(tokens(r.chunk.text)) if tokens else shingles(r.chunk.text) for r in results]
    chosen: list[int] = []
    per_doc: dict[str, int] = {}
    remaining = list(range(len(results)))
    while remaining and len(chosen) < k:
        best, best_val = -1, float("-inf")
        for i in remaining:
            if per_doc.get(results[i].chunk.doc_key, 0) >= per_doc_cap:
                continue
            sim = max((jaccard(sets[i], sets[j]) for j in chosen), default=0.0)
            val = mmr_lambda * rel(results[i]) - (1.0 - mmr_lambda) * sim
            if val > best_val:
                best, best_val = i, val
        if best < 0:
            break
        chosen.append(best)
        remaining.remove(best)
        doc = results[best].chunk.doc_key
        per_doc[doc] = per_doc.get(doc, 0) + 1
    return [results[i] for i in chosen]


_SENTENCE_END_RE = re.compile(r"(?<=[。！？；!?;])|(?<=\.)\s|\n")


def pack(
    blocks: Sequence[str], budget: int, count: Callable[[str], int]
) -> tuple[list[int], str | None]:
    """Which blocks fit ``budget`` tokens, in order.

    The best (first) block always goes in: when it alone is over the budget it is cut at the
    last sentence end that fits and returned as the second value (the first value is then
    ``[0]``). After it, first fit: a block that does not fit is skipped and a later, smaller
    one may still go in.
    """
    if not blocks:
        return [], None
    first = count(blocks[0])
    if first > budget:
        return [0], truncate(blocks[0], budget, count)
    chosen, used = [0], first
    for i, block in enumerate(blocks[1:], 1):
        n = count(block)
        if used + n <= budget:
            chosen.append(i)
            used += n
    return chosen, None


def truncate(text: str, budget: int, count: Callable[[str], int]) -> str:
    """The longest prefix of ``text`` ending at a sentence boundary (else at a character) that
    is at most ``budget`` tokens."""
    cuts = [m.start() for m in _SENTENCE_END_RE.finditer(text) if m.start() > 0]
    best = ""
    for cut in cuts:
        piece = text[:cut].rstrip()
        if count(piece) > budget:
            break
        best = piece
    if best:
        return best
    lo, hi = 0, len(text)  # no sentence fits: the longest character prefix that does
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count(text[:mid]) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo]
