"""Calibrate the RAG refusal threshold (hanlin/rag/refusal.py) on answerable vs unanswerable
questions.

    .venv/bin/python bench/rag_calibrate.py [--n 500] [--seed 0] [--model fast-use]

Answerable: questions of DRCD, CMRC 2018 and SciFact against their own corpus. Unanswerable:
the same questions against the other two corpora — DRCD ↔ CMRC is the hard case (Chinese
Wikipedia both, other paragraphs), Chinese ↔ SciFact the cross-language case. Every question
goes through the engine's real retrieval (hybrid search, de-duplication, diversity) and its
evidence features: question-term coverage and best dense cosine.

Each candidate score ``coverage + w · dense`` gets the threshold that maximises balanced
accuracy (mean of answer rate on answerable and refusal rate on unanswerable questions) on
half of the questions (even positions); the other half reports held-out rates. BM25 per query
token is shown for comparison: it separates well too, but scales with log(corpus size), so a
threshold fitted on a 2,000-chunk corpus refuses too much on a 10-document one.
Writes bench/out/rag_calibrate.json and .md.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import time
from typing import Any

from rag_common import HERE, SETS, knowledge_base, queries, use_bench_home

WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)


def auc(pos: list[float], neg: list[float]) -> float:
    """Probability that an answerable question scores above an unanswerable one."""
    ns = sorted(neg)
    total = 0.0
    for p in pos:
        lo, hi = bisect.bisect_left(ns, p), bisect.bisect_right(ns, p)
        total += lo + 0.5 * (hi - lo)
    return total / (len(pos) * len(ns))


def best_threshold(pos: list[float], neg: list[float]) -> tuple[float, float]:
    """(threshold, balanced accuracy) maximising balanced accuracy; answer when score ≥ t."""
    best = (0.0, 0.0)
    for t in sorted(set(pos + neg)):
        tpr = sum(p >= t for p in pos) / len(pos)
        tnr = sum(n < t for n in neg) / len(neg)
        if (tpr + tnr) / 2 > best[1]:
            best = (t, (tpr + tnr) / 2)
    return best


def collect(n: int, seed: int, model: str) -> list[dict[str, Any]]:
    from hanlin.config import load_settings
    from hanlin.rag.refusal import content_tokens
    from hanlin.rag.retrieval import retrieve

    settings = load_settings().rag
    kbs = {name: knowledge_base(name, model) for name in SETS}
    rows: list[dict[str, Any]] = []
    for qset in SETS:
        qs = queries(qset, n, seed)
        for kb_name, kb in kbs.items():
            t0 = time.perf_counter()
            for i, q in enumerate(qs):
                found = asyncio.run(retrieve(kb, q.text, settings))
                n_tokens = max(1, len(content_tokens(q.text, kb.analyzer)))
                bm25 = max((r.scores.get("keyword", 0.0) for r in found.results), default=0.0)
                rows.append(
                    {
                        "queries": qset,
                        "kb": kb_name,
                        "answerable": qset == kb_name,
                        "half": i % 2,
                        "coverage": found.strength.coverage,
                        "dense": found.strength.dense,
                        "bm25_per_token": bm25 / n_tokens,
                    }
                )
            print(
                f"{qset} questions vs {kb_name}: {len(qs)} in {time.perf_counter() - t0:.0f}s",
                flush=True,
            )
    return rows


def analyse(rows: list[dict[str, Any]]) -> dict[str, Any]:
    features: dict[str, Any] = {f"coverage + {w} dense": w for w in WEIGHTS}
    features["dense only"] = "dense"
    features["bm25 per token"] = "bm25"

    def score(r: dict[str, Any], f: Any) -> float:
        if f == "dense":
            return float(r["dense"])
        if f == "bm25":
            return float(r["bm25_per_token"])
        return float(r["coverage"] + f * r["dense"])

    out: dict[str, Any] = {"features": []}
    for label, f in features.items():
        fit = [r for r in rows if r["half"] == 0]
        held = [r for r in rows if r["half"] == 1]
        t, bacc_fit = best_threshold(
            [score(r, f) for r in fit if r["answerable"]],
            [score(r, f) for r in fit if not r["answerable"]],
        )
        pos = [score(r, f) for r in held if r["answerable"]]
        neg = [score(r, f) for r in held if not r["answerable"]]
        answered = sum(p >= t for p in pos) / len(pos)
        refused = sum(x < t for x in neg) / len(neg)
        pairs = {}
        for qset in SETS:
            for kb in SETS:
                sel = [score(r, f) for r in held if r["queries"] == qset and r["kb"] == kb]
                rate = sum(x < t for x in sel) / len(sel)
                pairs[f"{qset}→{kb}"] = round(rate, 4)
        all_pos = [score(r, f) for r in rows if r["answerable"]]
        all_neg = [score(r, f) for r in rows if not r["answerable"]]
        out["features"].append(
            {
                "feature": label,
                "auc_all": round(auc(all_pos, all_neg), 4),
                "threshold": round(t, 4),
                "balanced_acc_fit": round(bacc_fit, 4),
                "held_out_answer_rate": round(answered, 4),
                "held_out_refusal_rate": round(refused, 4),
                "held_out_balanced_acc": round((answered + refused) / 2, 4),
                "refusal_rate_by_pair": pairs,
            }
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=500, help="questions per set")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default="fast-use", help="embedding model of the corpora")
    args = ap.parse_args()
    use_bench_home()
    rows = collect(args.n, args.seed, args.model)
    result = {"model": args.model, "n_per_set": args.n, "seed": args.seed, **analyse(rows)}
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "rag_calibrate.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    lines = [
        "| feature | AUC | threshold | held-out answer rate | held-out refusal rate | "
        "balanced acc. |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["features"]:
        lines.append(
            f"| {r['feature']} | {r['auc_all']:.4f} | {r['threshold']:.3f} | "
            f"{r['held_out_answer_rate']:.3f} | {r['held_out_refusal_rate']:.3f} | "
            f"{r['held_out_balanced_acc']:.3f} |"
        )
    pair_names = list(result["features"][0]["refusal_rate_by_pair"])
    lines += ["", "Refusal rate per (questions → corpus), held-out half:", ""]
    lines.append("| feature | " + " | ".join(pair_names) + " |")
    lines.append("|---" * (len(pair_names) + 1) + "|")
    for r in result["features"]:
        rates = r["refusal_rate_by_pair"]
        cells = " | ".join(f"{rates[p]:.3f}" for p in pair_names)
        lines.append(f"| {r['feature']} | {cells} |")
    (out / "rag_calibrate.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
