"""BM25 top-k inside PostgreSQL, with exact MaxScore-style pruning of common terms.

Scoring is tantivy's (the embedded store's): idf ``ln(1 + (N - df + 0.5) / (df + 0.5))``,
k1 1.2, b 0.75, quantized document lengths (:func:`postgres_sql.quantized_length`).

Summing every posting of every query term costs time in proportion to the longest posting
list, and the longest lists belong to the terms that matter least ("the", "of", 的): a term in
90 % of chunks has idf ≈ 0.1. So the search first ranks only chunks that contain one of the
*essential* (rarer) terms — scoring them over all query terms — and keeps that answer when it
is provably the exact one: a chunk containing none of the essential terms scores at most
``Σ idf(t) × (k1 + 1)`` over the other terms, and if the k-th score found beats that bound,
no such chunk can enter the top k. Otherwise (every term common, or a bound too close) it sums
all postings as before. Document frequencies come from ``kb_terms`` (kept by triggers), one
index probe per term.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

#: BM25 parameters of the embedded store's tantivy index
K1 = 1.2
B = 0.75
#: a term in more than this share of chunks is "common": skipped as a candidate source
COMMON_SHARE = 0.05
#: prune only when the common terms' postings outnumber this (below it, summing them all is
#: as fast: SciFact's 8k chunks, bench/pg_backend.py) …
MIN_SKIPPED_POSTINGS = 10_000
#: … and this many times the postings the pruned path reads per query term
SKIP_RATIO = 2.0
#: bound slack for floating-point sums
_EPS = 1e-9

_TERM_SCORE = f"w.idf * p.tf * {K1 + 1} / (p.tf + {K1} * ({1 - B} + {B} * p.dl / %(avgdl)s))"


def _doc_join(filtered_where: str | None, chunk: str) -> str:
    if not filtered_where:
        return ""
    return (
        f" JOIN kb_chunks c ON c.id = {chunk} JOIN kb_documents d ON d.id = c.doc_id "
        f"AND ({filtered_where})"
    )


def full_sql(kb: int, filtered_where: str | None) -> str:
    """Sum every posting of the query terms. Named parameters: terms, idf, avgdl, k."""
    return f"""
        WITH w(term, idf) AS (SELECT * FROM unnest(%(terms)s::text[], %(idf)s::float8[]))
        SELECT p.chunk_id, sum({_TERM_SCORE}) AS score
        FROM kb_postings p JOIN w ON w.term = p.term{_doc_join(filtered_where, "p.chunk_id")}
        WHERE p.kb_id = {kb} AND p.term = ANY(%(terms)s)
        GROUP BY p.chunk_id ORDER BY score DESC, p.chunk_id LIMIT %(k)s
    """


def candidates_sql(kb: int, filtered_where: str | None) -> str:
    """Chunks (that pass the filter) holding an essential term. Named parameter: essential."""
    return f"""
        SELECT DISTINCT e.chunk_id FROM kb_postings e{_doc_join(filtered_where, "e.chunk_id")}
        WHERE e.kb_id = {kb} AND e.term = ANY(%(essential)s)
    """


def scored_sql(kb: int) -> str:
    """BM25 over all query terms of the given chunks only. Named parameters: terms, idf,
    ids, avgdl, k. (Two statements rather than one join: with the candidates in a CTE the
    planner misjudged their number and chose a nested loop ten times slower than the full
    sum.)"""
    return f"""
        WITH w(term, idf) AS (SELECT * FROM unnest(%(terms)s::text[], %(idf)s::float8[]))
        SELECT p.chunk_id, sum({_TERM_SCORE}) AS score
        FROM kb_postings p JOIN w ON w.term = p.term
        WHERE p.kb_id = {kb} AND p.term = ANY(%(terms)s) AND p.chunk_id = ANY(%(ids)s)
        GROUP BY p.chunk_id ORDER BY score DESC, p.chunk_id LIMIT %(k)s
    """


def idf(n: float, df: float) -> float:
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


def search(
    conn: Any,
    kb: int,
    terms: Sequence[str],
    k: int,
    filtered_where: str | None = None,
    filter_params: Sequence[Any] = (),
) -> tuple[list[tuple[int, float]], bool]:
    """Top-``k`` ``(chunk id, score)`` for ``terms`` (distinct), and whether the pruned
    path answered. ``filtered_where`` is a :func:`postgres_sql.filter_sql` clause over
    ``c``/``d`` whose positional parameters are ``filter_params``."""
    row = conn.execute(
        "SELECT n_chunks, total_len FROM kb_stats WHERE kb_id = %s", (kb,)
    ).fetchone()
    if not row or not row[0]:
        return [], False
    n, total = float(row[0]), float(row[1])
    df = dict(
        conn.execute(
            "SELECT term, df FROM kb_terms WHERE kb_id = %s AND term = ANY(%s)",
            (kb, list(terms)),
        ).fetchall()
    )
    present = sorted((t for t in terms if df.get(t, 0) > 0), key=lambda t: (df[t], t))
    if not present:
        return [], False
    weights = {t: idf(n, df[t]) for t in present}
    params: dict[str, Any] = {
        "terms": present,
        "idf": [weights[t] for t in present],
        "avgdl": max(total / n, 1e-9),
        "k": k,
    }
    essential = [t for t in present if df[t] <= COMMON_SHARE * n] or present[:1]
    common = [t for t in present if t not in essential]
    skipped = sum(df[t] for t in common)
    read = sum(df[t] for t in essential) * len(present)
    if common and skipped >= MIN_SKIPPED_POSTINGS and skipped > SKIP_RATIO * read:
        sql = candidates_sql(kb, filtered_where)
        ids = [r[0] for r in _run(conn, sql, {"essential": essential}, filter_params)]
        if len(ids) >= k:  # else chunks of common terms only fill the top k: sum them all
            rows = _hits(_run(conn, scored_sql(kb), params | {"ids": ids}, ()))
            bound = sum(weights[t] * (K1 + 1) for t in common)
            if rows[-1][1] > bound + _EPS:
                return rows, True
    return _hits(_run(conn, full_sql(kb, filtered_where), params, filter_params)), False


def _hits(rows: list[Any]) -> list[tuple[int, float]]:
    return [(int(r[0]), float(r[1])) for r in rows]


def _run(conn: Any, sql: str, params: dict[str, Any], filter_params: Sequence[Any]) -> list[Any]:
    # the filter clause uses positional %s; name them so both kinds can share one query
    if filter_params:
        for i, value in enumerate(filter_params):
            sql = sql.replace("%s", f"%(f{i})s", 1)
            params = params | {f"f{i}": value}
    return list(conn.execute(sql, params).fetchall())
