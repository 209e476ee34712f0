"""Fusion methods compared offline on the knowledge bases bench/retrieval.py built.

    .venv/bin/python bench/fusion.py [--sets scifact,drcd,cmrc] [--model auto] [--out bench/out]

For every judged query it runs the keyword and the dense retriever once (300 candidates each,
exact dense scores for the union, as ``KnowledgeBase.search`` does), then scores each fusion
method on the same candidate lists: weighted min-max (the default) over a grid of dense weights,
z-score fusion, distribution-based score fusion (mean ± 3σ) and reciprocal rank fusion.
Results go to <out>/fusion-<model>.md/.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from retrieval import EVAL, SETS  # noqa: E402

Cands = tuple[list[int], np.ndarray, np.ndarray, np.ndarray, np.ndarray]
WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 1.0)


def collect(name: str, model: str, n: int = 300) -> tuple[list[Cands], list[dict[str, int]]]:
    """Per query: candidate chunk doc ids, keyword score (0 if absent), exact dense score,
    keyword rank and dense rank (n + 1 if absent); and the qrels."""
    from hanlin import KnowledgeBase
    from hanlin.knowledge.evaluation import load_beir

    folder, split = SETS[name]
    data = load_beir(EVAL / folder, split)
    kb = KnowledgeBase(f"eval-{name}-{model}")
    out: list[Cands] = []
    qrels = []
    for qid, text in data.queries.items():
        if qid not in data.qrels:
            continue
        qvec = kb._query_vector(text)
        dense = kb.store.dense_search(qvec, n, None)
        keyword = kb.store.keyword_search(kb.analyzer.analyze(text), n, None)
        ids = list(dict.fromkeys([c for c, _ in keyword] + [c for c, _ in dense]))
        exact = kb.store.score_dense(qvec, ids)
        kw, kr = dict(keyword), {c: i + 1 for i, (c, _) in enumerate(keyword)}
        dr = {c: i + 1 for i, (c, _) in enumerate(dense)}
        docs = {c.id: c.doc_key.rsplit("#", 1)[1] for c in kb.store.get_chunks(ids)}
        out.append(
            (
                [docs.get(c, "") for c in ids],  # type: ignore[misc]
                np.array([kw.get(c, 0.0) for c in ids]),
                np.array([exact.get(c, 0.0) for c in ids]),
                np.array([kr.get(c, n + 1) for c in ids], dtype=float),
                np.array([dr.get(c, n + 1) for c in ids], dtype=float),
            )
        )
        qrels.append(data.qrels[qid])
    kb.close()
    return out, qrels


def _minmax(x: np.ndarray) -> np.ndarray:
    span = x.max() - x.min() if len(x) else 0.0
    return (x - x.min()) / span if span > 0 else np.ones_like(x)


def _z(x: np.ndarray) -> np.ndarray:
    sd = x.std()
    return (x - x.mean()) / sd if sd > 0 else np.zeros_like(x)


def _dbsf(x: np.ndarray) -> np.ndarray:
    m, sd = x.mean(), x.std()
    lo, hi = m - 3 * sd, m + 3 * sd
    return np.clip((x - lo) / (hi - lo), 0, 1) if hi > lo else np.ones_like(x)


def methods() -> dict[str, Callable[[Cands], np.ndarray]]:
    m: dict[str, Callable[[Cands], np.ndarray]] = {}
    for w in WEIGHTS:
        m[f"minmax w={w}"] = lambda c, w=w: w * _minmax(c[2]) + (1 - w) * _minmax(c[1])
    for w in (0.2, 0.3, 0.4, 0.5):
        m[f"zscore w={w}"] = lambda c, w=w: w * _z(c[2]) + (1 - w) * _z(c[1])
        m[f"dbsf w={w}"] = lambda c, w=w: w * _dbsf(c[2]) + (1 - w) * _dbsf(c[1])
    m["rrf"] = lambda c: 1 / (60 + c[3]) + 1 / (60 + c[4])
    return m


def evaluate(cands: list[Cands], qrels: list[dict[str, int]], fn: Callable[[Cands], np.ndarray]):
    from hanlin.knowledge.evaluation import ndcg_at_k

    total = 0.0
    for c, rel in zip(cands, qrels, strict=True):
        order = np.argsort(-fn(c), kind="stable")
        ranked = list(dict.fromkeys(c[0][i] for i in order))
        total += ndcg_at_k(ranked, rel, 10)
    return round(total / len(cands), 4)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", default="scifact,drcd,cmrc")
    ap.add_argument("--model", default="auto")
    ap.add_argument("--out", type=Path, default=HERE / "out")
    args = ap.parse_args()
    os.environ.setdefault("HANLIN_HOME", str(HERE / ".cache" / "home"))
    rows = []
    for name in args.sets.split(","):
        cands, qrels = collect(name, args.model)
        for label, fn in methods().items():
            rows.append({"set": name, "method": label, "ndcg@10": evaluate(cands, qrels, fn)})
            print(rows[-1], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"fusion-{args.model}.json").write_text(json.dumps(rows, indent=2))
    lines = ["| set | method | nDCG@10 |", "|---|---|---|"]
    lines += [f"| {r['set']} | {r['method']} | {r['ndcg@10']:.4f} |" for r in rows]
    (args.out / f"fusion-{args.model}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
