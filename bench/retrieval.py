"""Retrieval quality on the shared evaluation sets: nDCG@10 and Recall@100 for keyword, dense
and hybrid search, through the real ingest pipeline and ``KnowledgeBase.search``.

    .venv/bin/python bench/retrieval.py [--sets scifact,drcd,cmrc] [--model NAME] [--out DIR]

``--model`` defaults to the product default (``fast-use``); ``--model auto`` creates each
knowledge base as ``embedding_model = "auto"`` would: the embedding model chosen from the
language of the first documents (``hanlin.knowledge.language``). Knowledge
bases are kept in bench/.cache/home so a re-run only searches (the ingest rate is reported for
the run that ingested). Results go to <out>/retrieval-<model>.md/.json; docs/benchmarks.md
quotes them. Query latency is per ``KnowledgeBase.search`` call (k=200, 300 candidates).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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
    cpu0 = _cpu()
    report = kb.add(EVAL / folder / "corpus.jsonl", loader_options=opts)
    ingest_s = time.perf_counter() - t0
    ingest = (
        {
            "ingest docs/s": round(report.documents_added / ingest_s, 1),
            "ingest s": round(ingest_s, 1),
            "ingest CPU-s": round(_cpu() - cpu0, 1),
        }
        if report.documents_added
        else {}
    )
    print(
        f"[{name}] ingest: {report.documents_added} new docs, {report.chunks_written} chunks "
        f"in {ingest_s:.1f}s with {kb.embedding_model} ({ingest})",
        flush=True,
    )
    queries = [(qid, q) for qid, q in data.queries.items() if qid in data.qrels]
    rows = []
    for label, params in configs:
        ndcg = recall = 0.0
        times = []
        for qid, text in queries:
            t0 = time.perf_counter()
            hits = kb.search(text, k=200, candidates=300, **params)  # type: ignore[arg-type]
            times.append((time.perf_counter() - t0) * 1000)
            ranked = list(dict.fromkeys(h.chunk.doc_key.rsplit("#", 1)[1] for h in hits))
            ndcg += ndcg_at_k(ranked, data.qrels[qid], 10)
            recall += recall_at_k(ranked, data.qrels[qid], 100)
        n = len(queries)
        row = {
            "set": name,
            "model": kb.embedding_model,
            "language": kb.store.get_meta("language") or "",
            "config": label,
            "queries": n,
            "ndcg@10": round(ndcg / n, 4),
            "recall@100": round(recall / n, 4),
            "ms/query": round(statistics.fmean(times), 1),
            "p50 ms": round(statistics.median(times), 1),
            "p95 ms": round(statistics.quantiles(times, n=20)[-1], 1),
            **(ingest if label == configs[0][0] else {}),
        }
        print(row, flush=True)
        rows.append(row)
    kb.close()
    return rows


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the embedding workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", default="scifact,drcd,cmrc")
    ap.add_argument("--model", default="fast-use", help="an embedder name, or auto (by language)")
    ap.add_argument("--out", type=Path, default=HERE / "out", help="output folder")
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
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / f"retrieval-{args.model}.json").write_text(json.dumps(rows, indent=2))
    lines = [
        "| set | model | config | nDCG@10 | Recall@100 | ms/query | p50 / p95 ms | ingest docs/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['set']} | {r['model']} | {r['config']} | {r['ndcg@10']:.4f} | "
        f"{r['recall@100']:.4f} | {r['ms/query']} | {r['p50 ms']} / {r['p95 ms']} | "
        f"{r.get('ingest docs/s', '')} |"
        for r in rows
    ]
    (out / f"retrieval-{args.model}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
