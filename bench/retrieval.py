"""Retrieval quality on the shared evaluation sets: nDCG@10 and Recall@100 for keyword, dense
and hybrid search, through the real ingest pipeline and ``KnowledgeBase.search``.

    .venv/bin/python bench/retrieval.py [--sets scifact,drcd,cmrc] [--model fast-use]

Knowledge bases are kept in bench/.cache/home so a re-run only searches. Results go to
bench/out/retrieval-<model>.md/.json; docs/benchmarks.md quotes them.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

EVAL = Path(os.environ.get("HANLIN_EVAL", Path(__file__).resolve().parents[2] / "shared" / "eval"))
SETS: dict[str, tuple[str, str | None]] = {
    "scifact": ("scifact", "train"),
    "drcd": ("zh/drcd-dev", None),
    "cmrc": ("zh/cmrc2018-trial", None),
}
HERE = Path(__file__).resolve().parent


def run_set(
    name: str, model: str, configs: list[tuple[str, dict[str, object]]]
) -> list[dict[str, object]]:
    from hanlin import KnowledgeBase
    from hanlin.knowledge.evaluation import load_beir, ndcg_at_k, recall_at_k
    from hanlin.knowledge.loaders import LoaderOptions

    folder, split = SETS[name]
    data = load_beir(EVAL / folder, split)
    kb = KnowledgeBase.create(f"eval-{name}-{model}", embedding_model=model, exist_ok=True)
    opts = LoaderOptions(text_fields=["text"], title_field="title", id_field="_id")
    t0 = time.perf_counter()
    report = kb.add(EVAL / folder / "corpus.jsonl", loader_options=opts)
    ingest_s = time.perf_counter() - t0
    print(
        f"[{name}] ingest: {report.documents_added} new docs, {report.chunks_written} chunks "
        f"in {ingest_s:.1f}s",
        flush=True,
    )
    queries = [(qid, q) for qid, q in data.queries.items() if qid in data.qrels]
    rows = []
    for label, params in configs:
        ndcg = recall = 0.0
        t0 = time.perf_counter()
        for qid, text in queries:
            hits = kb.search(text, k=200, candidates=300, **params)  # type: ignore[arg-type]
            ranked = list(dict.fromkeys(h.chunk.doc_key.rsplit("#", 1)[1] for h in hits))
            ndcg += ndcg_at_k(ranked, data.qrels[qid], 10)
            recall += recall_at_k(ranked, data.qrels[qid], 100)
        n = len(queries)
        row = {
            "set": name,
            "model": model,
            "config": label,
            "queries": n,
            "ndcg@10": round(ndcg / n, 4),
            "recall@100": round(recall / n, 4),
            "ms/query": round((time.perf_counter() - t0) / n * 1000, 1),
        }
        print(row, flush=True)
        rows.append(row)
    kb.close()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", default="scifact,drcd,cmrc")
    ap.add_argument("--model", default="fast-use")
    ap.add_argument("--sweep", action="store_true", help="also sweep fusion weights")
    args = ap.parse_args()
    os.environ.setdefault("HANLIN_HOME", str(HERE / ".cache" / "home"))
    configs: list[tuple[str, dict[str, object]]] = [
        ("keyword", {"mode": "keyword"}),
        ("dense", {"mode": "dense"}),
        ("hybrid (default)", {"mode": "hybrid"}),
        ("hybrid rrf", {"mode": "hybrid", "fusion": "rrf", "dense_weight": 0.5}),
    ]
    if args.sweep:
        configs += [
            (f"hybrid weighted w={w}", {"mode": "hybrid", "fusion": "weighted", "dense_weight": w})
            for w in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
        ]
    rows = [r for s in args.sets.split(",") for r in run_set(s, args.model, configs)]
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / f"retrieval-{args.model}.json").write_text(json.dumps(rows, indent=2))
    lines = [
        "| set | model | config | nDCG@10 | Recall@100 | ms/query |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['set']} | {r['model']} | {r['config']} | {r['ndcg@10']:.4f} | "
        f"{r['recall@100']:.4f} | {r['ms/query']} |"
        for r in rows
    ]
    (out / f"retrieval-{args.model}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
