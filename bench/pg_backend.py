"""Retrieval quality and query latency, PostgreSQL store vs the embedded store, all modes.

    .venv/bin/python bench/pg_backend.py [--sets scifact,drcd,cmrc] [--out bench/out]

Each set is ingested once into the embedded store (SQLite + tantivy + exact/usearch vectors,
``fast-use`` embeddings, default chunking) and copied as stored — no re-parsing, no
re-embedding — into a local PostgreSQL 18 + pgvector (``hanlin.db.local.start_local``, a Unix
socket under bench/.cache/pg_backend) with ``hanlin.knowledge.copy.copy_kb``. Both are then
searched with the same judged queries and the same precomputed query vectors (the query
embedding is timed once, separately), k=10 with the default candidate count, chunk hits folded
to documents as in bench/retrieval.py. Reported per set and mode: nDCG@10 and Recall@10 for
each backend, the difference, the share of queries whose top-10 document lists are identical,
and p50/p95 latency per ``KnowledgeBase.search`` call.

Knowledge bases persist in bench/.cache/pg_backend (a re-run only searches). ``--sets`` also
accepts BEIR folders (``path`` or ``path:split``). Results: <out>/pg_backend.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
EVAL = Path(os.environ.get("HANLIN_EVAL", HERE.parents[1] / "shared" / "eval"))
SETS: dict[str, tuple[str, str | None]] = {
    "scifact": ("scifact", "train"),
    "drcd": ("zh/drcd-dev", None),
    "cmrc": ("zh/cmrc2018-trial", None),
}
MODES = ("keyword", "dense", "hybrid")
CACHE = HERE / ".cache" / "pg_backend"


def resolve(spec: str) -> tuple[str, Path, str | None]:
    """A set name from SETS, or a BEIR folder (``path`` or ``path:split``)."""
    if spec in SETS:
        folder, split = SETS[spec]
        return spec, EVAL / folder, split
    path, _, split = spec.partition(":")
    return Path(path).name, Path(path), split or None


def pct(xs: list[float], p: float) -> float:
    return round(float(np.percentile(np.asarray(xs), p)), 2)


def ensure_kbs(name: str, folder: Path, pg_url: str) -> tuple[Any, Any, dict[str, Any]]:
    """The embedded knowledge base (ingested if missing) and its PostgreSQL copy."""
    from hanlin import KnowledgeBase
    from hanlin.config import load_settings
    from hanlin.knowledge.catalog import catalog
    from hanlin.knowledge.copy import copy_kb, target_settings
    from hanlin.knowledge.loaders import LoaderOptions

    embedded = load_settings(home=CACHE / "home", database_url=None)
    embedded.knowledge.store = "sqlite"
    pg = target_settings(embedded, pg_url)
    kb_name = f"pgb-{name}"
    info: dict[str, Any] = {}
    kb = KnowledgeBase.create(kb_name, embedding_model="fast-use", settings=embedded, exist_ok=True)
    if kb.store.stats().documents == 0:
        opts = LoaderOptions(text_fields=["text"], title_field="title", id_field="_id")
        t0 = time.perf_counter()
        report = kb.add(folder / "corpus.jsonl", loader_options=opts)
        info["embedded ingest s"] = round(time.perf_counter() - t0, 1)
        print(f"[{name}] ingested {report.documents_added} docs, {report.chunks_written} chunks")
    a = kb.store.stats()
    if catalog(pg).store_of(kb_name) is not None:
        b = KnowledgeBase(kb_name, pg).store.stats()
        if (a.documents, a.chunks, a.vectors) != (b.documents, b.chunks, b.vectors):
            KnowledgeBase.remove(kb_name, pg)  # a half-finished copy from an interrupted run
    if catalog(pg).store_of(kb_name) is None:
        t0 = time.perf_counter()
        rep = copy_kb(kb_name, pg_url, settings=embedded)
        info["copy s"] = round(time.perf_counter() - t0, 1)
        info["copy verified top-10"] = f"{rep.queries - len(rep.mismatched_queries)}/{rep.queries}"
        print(f"[{name}] copied to PostgreSQL in {info['copy s']}s, {info['copy verified top-10']}")
    info.update(documents=a.documents, chunks=a.chunks)
    return kb, KnowledgeBase(kb_name, pg), info


def run_set(spec: str, pg_url: str, k: int, candidates: int | None) -> dict[str, Any]:
    from hanlin.knowledge.evaluation import load_beir, ndcg_at_k, recall_at_k

    name, folder, split = resolve(spec)
    data = load_beir(folder, split)
    emb, pg, info = ensure_kbs(name, folder, pg_url)
    queries = [(qid, q) for qid, q in data.queries.items() if qid in data.qrels]
    t_embed = []
    vectors = []
    for _, text in queries:
        t0 = time.perf_counter()
        vectors.append(emb.embedder.embed_query(text))
        t_embed.append((time.perf_counter() - t0) * 1000)
    result: dict[str, Any] = {
        "set": name,
        "queries": len(queries),
        **info,
        "query embedding p50/p95 ms": [pct(t_embed, 50), pct(t_embed, 95)],
    }
    for mode in MODES:
        per: dict[str, Any] = {}
        ranked_by: dict[str, list[list[str]]] = {}
        for label, kb in (("embedded", emb), ("postgres", pg)):
            for (_, text), vec in list(zip(queries, vectors, strict=True))[:20]:  # warm up
                kb.search(text, k=k, mode=mode, candidates=candidates, query_vector=vec)
            times, ranked_all = [], []
            ndcg = recall = 0.0
            for (qid, text), vec in zip(queries, vectors, strict=True):
                t0 = time.perf_counter()
                hits = kb.search(text, k=k, mode=mode, candidates=candidates, query_vector=vec)
                times.append((time.perf_counter() - t0) * 1000)
                ranked = list(dict.fromkeys(h.chunk.doc_key.rsplit("#", 1)[1] for h in hits))
                ranked_all.append(ranked[:10])
                ndcg += ndcg_at_k(ranked, data.qrels[qid], 10)
                recall += recall_at_k(ranked, data.qrels[qid], 10)
            n = len(queries)
            per[label] = {
                "ndcg@10": round(ndcg / n, 4),
                "recall@10": round(recall / n, 4),
                "p50 ms": pct(times, 50),
                "p95 ms": pct(times, 95),
            }
            ranked_by[label] = ranked_all
        same = sum(
            a == b for a, b in zip(ranked_by["embedded"], ranked_by["postgres"], strict=True)
        )
        per["delta ndcg@10"] = round(per["postgres"]["ndcg@10"] - per["embedded"]["ndcg@10"], 4)
        per["identical top-10"] = round(same / len(queries), 4)
        result[mode] = per
        print(name, mode, per, flush=True)
    emb.close()
    pg.close()
    return result


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| set | mode | nDCG@10 embedded | nDCG@10 PostgreSQL | Δ | R@10 embedded | "
        "R@10 PostgreSQL | identical top-10 | p50 / p95 ms embedded | p50 / p95 ms PostgreSQL |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        for mode in MODES:
            m = r[mode]
            e, p = m["embedded"], m["postgres"]
            lines.append(
                f"| {r['set']} | {mode} | {e['ndcg@10']:.4f} | {p['ndcg@10']:.4f} | "
                f"{m['delta ndcg@10']:+.4f} | {e['recall@10']:.4f} | {p['recall@10']:.4f} | "
                f"{m['identical top-10']:.1%} | {e['p50 ms']} / {e['p95 ms']} | "
                f"{p['p50 ms']} / {p['p95 ms']} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sets", nargs="*", help="set names (scifact, drcd, cmrc) or BEIR folders")
    ap.add_argument("--sets", dest="sets_opt", default=None, help="comma-separated, as above")
    ap.add_argument("--out", type=Path, default=HERE / "out", help="output folder")
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--candidates", type=int, default=None, help="default: the search default")
    args = ap.parse_args()
    specs = args.sets or (args.sets_opt.split(",") if args.sets_opt else list(SETS))
    os.environ.pop("HANLIN_DATABASE_URL", None)
    os.environ["HANLIN_HOME"] = str(CACHE / "home")
    from hanlin.db.local import start_local

    CACHE.mkdir(parents=True, exist_ok=True)
    CACHE.chmod(0o755)  # the server may run as its own system user
    t0 = time.perf_counter()
    server = start_local(CACHE / "pgdata", keep_running=False)
    print(f"PostgreSQL up in {time.perf_counter() - t0:.1f}s", flush=True)
    try:
        rows = [run_set(s, server.url, args.k, args.candidates) for s in specs]
    finally:
        server.stop()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pg_backend.json").write_text(json.dumps(rows, indent=2, ensure_ascii=False))
    (args.out / "pg_backend.md").write_text(table(rows))
    print(table(rows))


if __name__ == "__main__":
    main()
