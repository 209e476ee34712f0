"""Dense search at scale, embedded store (SQLite + usearch HNSW) vs PostgreSQL + pgvector HNSW:
p50/p95 latency and recall@10 against exact search, unfiltered and under a 10 % metadata
filter (with the number of searches that returned fewer than k rows), plus keyword and hybrid
latency, and ``vector`` vs ``halfvec`` for the PostgreSQL index.

    .venv/bin/python bench/pg_scale.py --n 100000
    .venv/bin/python bench/pg_scale.py --n 1000000 --maintenance-work-mem 4GB

Data: ``--n`` synthetic chunks, 384-d clustered unit vectors (1,000 Gaussian centres, noise
0.6 per dimension: diffuse, hard for ANN, like bench/latency.py), 8 Zipf-distributed words of
SciFact vocabulary each (pre-analyzed: the words are the keyword tokens), 100 chunks per
document, document metadata ``{"group": d % 10}``; the filter ``group = 3`` keeps 10 %.

Both stores are filled through their own ``write`` (documents of 100 chunks, 20k chunks per
call). The embedded store maintains its usearch graph as it goes (its only path). The
PostgreSQL store's ``write`` also works with its HNSW index in place, but inserting a million
rows through a live HNSW index is slow, so this script drops the knowledge base's index, loads
through ``write`` (COPY inside), and then builds the index once with ``CREATE INDEX``
(``maintenance_work_mem`` below, one parallel worker) — the same index the store creates
(``hnsw_index_sql``), and a second, ``halfvec``, index beside it. The insert rate with the
index live is measured separately on 2,000 extra chunks (deleted again).

Searches go through the stores' ``dense_search`` / ``keyword_search`` (hybrid mirrors
``KnowledgeBase.search``: 30 candidates from each, exact dense scores, weighted fusion 0.3);
the ``vector``/``halfvec`` × ``ef_search`` grid uses the store's query shape with the index
expression swapped. Ground truth: exact inner products in numpy. Stores persist in
bench/.cache/pg_scale (a re-run with the same ``--n`` only measures). Results:
<out>/pg_scale-<n>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
EVAL = Path(os.environ.get("HANLIN_EVAL", HERE.parents[1] / "shared" / "eval"))
CACHE = HERE / ".cache" / "pg_scale"
DIM = 384
CHUNKS_PER_DOC = 100
WORDS = 8
BATCH = 20_000
K = 10
CANDIDATES = 30
FILTER = {"group": 3}
GROUPS = 10


# --- data ----------------------------------------------------------------------------------
def vectors(n: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((1000, DIM)).astype(np.float32)
    labels = rng.integers(0, 1000, n)
    out = np.empty((n, DIM), dtype=np.float32)
    for i in range(0, n, 100_000):
        part = centres[labels[i : i + 100_000]]
        part = part + 0.6 * rng.standard_normal(part.shape).astype(np.float32)
        out[i : i + 100_000] = part / np.linalg.norm(part, axis=1, keepdims=True)
    return out, centres


def vocabulary(size: int = 20_000) -> list[str]:
    """Words of SciFact abstracts by frequency (synthetic ``w123`` words without the data)."""
    from collections import Counter

    corpus = EVAL / "scifact" / "corpus.jsonl"
    if not corpus.exists():
        return [f"w{i}" for i in range(size)]
    counts: Counter[str] = Counter()
    with corpus.open() as f:
        for line in f:
            counts.update(re.findall(r"[a-z]{3,}", json.loads(line)["text"].lower()))
    return [w for w, _ in counts.most_common(size)]


def texts(rng: np.random.Generator, vocab: list[str], n: int, words: int) -> list[str]:
    ranks = np.minimum(rng.zipf(1.3, (n, words)), len(vocab)) - 1
    return [" ".join(vocab[r] for r in row) for row in ranks]


def documents(n: int, vecs: np.ndarray, vocab: list[str], start_doc: int = 0) -> Any:
    """DocumentWrite batches of ~BATCH chunks, in a fixed order (row i = text_hash h{i})."""
    from hanlin.knowledge.base import Chunk
    from hanlin.knowledge.stores.base import ChunkWrite, DocumentWrite

    rng = np.random.default_rng(11)
    batch = []
    for d in range(start_doc, n // CHUNKS_PER_DOC):
        words = texts(rng, vocab, CHUNKS_PER_DOC, WORDS)
        chunks = []
        for j, text in enumerate(words):
            i = d * CHUNKS_PER_DOC + j
            c = Chunk(text=text, ord=j, char_start=0, char_end=len(text), n_tokens=WORDS)
            chunks.append(ChunkWrite(c, text, f"h{i}", vecs[i % len(vecs)]))
        batch.append(
            DocumentWrite(
                key=f"doc{d}",
                file_path=None,
                source=f"doc{d}",
                title=f"doc {d}",
                format="txt",
                content_hash=str(d),
                metadata={"group": d % GROUPS},
                n_chars=0,
                chunks=chunks,
            )
        )
        if len(batch) * CHUNKS_PER_DOC >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def pct(xs: list[float], p: float) -> float:
    return round(float(np.percentile(np.asarray(xs) * 1000, p)), 2)


# --- loading -------------------------------------------------------------------------------
def load(store: Any, n: int, vecs: np.ndarray, vocab: list[str], label: str) -> float:
    t0 = time.perf_counter()
    done = 0
    for batch in documents(n, vecs, vocab):
        store.write(batch)
        done += sum(len(d.chunks) for d in batch)
        print(f"  [{label}] {done:,} chunks, {time.perf_counter() - t0:.0f}s", flush=True)
    store.flush()
    return time.perf_counter() - t0


def embedded_store(n: int, vecs: np.ndarray, vocab: list[str], info: dict[str, Any]) -> Any:
    from hanlin.knowledge.stores.sqlite import SQLiteStore

    folder = CACHE / f"embedded-{n}"
    store = SQLiteStore(folder)
    if store.stats().chunks != n:
        store.close()
        shutil.rmtree(folder)
        store = SQLiteStore(folder)
        store.set_meta("embedding_dim", str(DIM))
        store.set_meta("embedding_space", f"synthetic-{DIM}")
        info["embedded load s (write + usearch graph + tantivy)"] = round(
            load(store, n, vecs, vocab, "embedded"), 1
        )
    t0 = time.perf_counter()
    store.dense_search(vecs[0], K)  # opens the graph
    info["embedded open s"] = round(time.perf_counter() - t0, 2)
    return store


def pg_server(mem: str) -> Any:
    """The local PostgreSQL, restarted once with ``shared_buffers`` = ``mem`` if it differs."""
    import psycopg

    from hanlin.db.local import start_local

    CACHE.mkdir(parents=True, exist_ok=True)
    CACHE.chmod(0o755)  # the server may run as its own system user
    server = start_local(CACHE / "pgdata", keep_running=False)
    with psycopg.connect(server.url, autocommit=True) as conn:
        row = conn.execute("SHOW shared_buffers").fetchone()
        if row and row[0] != mem:
            conn.execute(f"ALTER SYSTEM SET shared_buffers = '{mem}'")
            conn.execute("ALTER SYSTEM SET max_parallel_maintenance_workers = 1")
            conn.execute("ALTER SYSTEM SET max_parallel_workers_per_gather = 1")
            restart = True
        else:
            restart = False
    if restart:
        server.stop()
        server = start_local(CACHE / "pgdata", keep_running=False)
    return server


def pg_store(
    n: int, url: str, vecs: np.ndarray, vocab: list[str], mwm: str, info: dict[str, Any]
) -> Any:
    import psycopg

    from hanlin.knowledge.stores.postgres import PostgresStore
    from hanlin.knowledge.stores.postgres_sql import hnsw_index_sql, sync_hnsw_indexes

    store = PostgresStore(Path(f"scale-{n}"), url=url)
    kb = store.kb
    if store.stats().chunks != n:
        store.drop()
        store = PostgresStore(Path(f"scale-{n}"), url=url)
        kb = store.kb
        store.set_meta("embedding_dim", str(DIM))
        with psycopg.connect(url, autocommit=True) as conn:
            sync_hnsw_indexes(conn, kb, None)  # bulk load first, build the graph once after
        info["postgres load s (write, no index)"] = round(
            load(store, n, vecs, vocab, "postgres"), 1
        )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"SET maintenance_work_mem = '{mwm}'")
        conn.execute("SET max_parallel_maintenance_workers = 1")
        names = {
            r[0]
            for r in conn.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'kb_chunks'"
            ).fetchall()
        }
        for label, name, sql in (
            ("vector", f"kb_chunks_hnsw_{kb}_{DIM}", hnsw_index_sql(kb, DIM)),
            ("halfvec", f"kb_chunks_hnsw_half_{kb}_{DIM}", half_index_sql(kb)),
        ):
            if name not in names:
                t0 = time.perf_counter()
                conn.execute(sql)
                info[f"postgres {label} HNSW build s"] = round(time.perf_counter() - t0, 1)
                print(
                    f"  [postgres] {label} index built in {info[f'postgres {label} HNSW build s']}s"
                )
            size = conn.execute("SELECT pg_relation_size(%s)", (name,)).fetchone()
            info[f"postgres {label} index MB"] = round(int(size[0]) / 2**20) if size else None
        conn.execute("ANALYZE kb_chunks")
        conn.execute("ANALYZE kb_documents")
        conn.execute("ANALYZE kb_postings")
        size = conn.execute(
            "SELECT pg_total_relation_size('kb_chunks'), pg_total_relation_size('kb_postings')"
        ).fetchone()
        if size:
            info["postgres kb_chunks MB (with indexes)"] = round(int(size[0]) / 2**20)
            info["postgres kb_postings MB (with indexes)"] = round(int(size[1]) / 2**20)
    return store


def half_index_sql(kb: int) -> str:
    return (
        f"CREATE INDEX IF NOT EXISTS kb_chunks_hnsw_half_{kb}_{DIM} ON kb_chunks "
        f"USING hnsw ((embedding::halfvec({DIM})) halfvec_ip_ops) WHERE kb_id = {kb}"
    )


# --- searching -----------------------------------------------------------------------------
def row_of_ids(store: Any, pg: bool) -> dict[int, int]:
    """chunk id → row of the generated data (from the text hash ``h{row}``)."""
    if pg:
        with store.db.connection() as conn:
            rows = conn.execute(
                "SELECT id, text_hash FROM kb_chunks WHERE kb_id = %s", (store.kb,)
            ).fetchall()
    else:
        rows = store.conn.execute("SELECT id, text_hash FROM chunks").fetchall()
    return {int(i): int(h[1:]) for i, h in rows}


def exact_top(vecs: np.ndarray, qv: np.ndarray, allowed: np.ndarray | None) -> list[set[int]]:
    out: list[set[int]] = []
    rows = np.arange(len(vecs)) if allowed is None else allowed
    sub = vecs[rows]
    for i in range(0, len(qv), 50):
        scores = qv[i : i + 50] @ sub.T
        top = np.argpartition(-scores, K, axis=1)[:, :K]
        out.extend({int(rows[j]) for j in t} for t in top)
    return out


def hybrid(store: Any, qvec: np.ndarray, tokens: list[str], flt: Any) -> list[int]:
    """What ``KnowledgeBase.search(mode="hybrid")`` does below the knowledge base."""
    from hanlin.knowledge.search import fuse

    dense = store.dense_search(qvec, CANDIDATES, flt)
    keyword = store.keyword_search(tokens, CANDIDATES, flt)
    ids = list(dict.fromkeys([c for c, _ in keyword] + [c for c, _ in dense]))
    fused = fuse(dense, keyword, dense_scores=store.score_dense(qvec, ids), dense_weight=0.3)
    store.get_chunks([c for c, *_ in fused[:K]])
    return [c for c, *_ in fused[:K]]


def measure(
    label: str,
    search: Any,
    qv: np.ndarray,
    truth: list[set[int]] | None,
    row: dict[int, int],
    want: int = K,
) -> dict[str, Any]:
    for q in qv[:10]:
        search(q, 0)
    times, recall, short = [], [], 0
    for i, q in enumerate(qv):
        t0 = time.perf_counter()
        ids = search(q, i)
        times.append(time.perf_counter() - t0)
        short += len(ids) < want
        if truth is not None:
            recall.append(len({row[c] for c in ids} & truth[i]) / K)
    out: dict[str, Any] = {
        "queries": len(qv),
        "p50 ms": pct(times, 50),
        "p95 ms": pct(times, 95),
        "short": short,
    }
    if truth is not None:
        out["recall@10"] = round(float(np.mean(recall)), 4)
    print(f"  {label}: {out}", flush=True)
    return out


def sql_search(store: Any, kind: str, ef: int, flt: Any) -> Any:
    """The store's HNSW query with the index expression of ``kind`` (vector/halfvec)."""
    from hanlin.knowledge.stores.postgres_sql import filter_sql

    where, params = filter_sql(flt) if flt else ("true", [])
    expr = f"c.embedding::{kind}({DIM}) <#> %s::{kind}({DIM})"
    sql = (
        f"SELECT c.id FROM kb_chunks c JOIN kb_documents d ON d.id = c.doc_id "
        f"WHERE c.kb_id = {store.kb} AND c.embedding IS NOT NULL AND ({where}) "
        f"ORDER BY {expr} LIMIT {K}"
    )

    def run(q: np.ndarray, _i: int) -> list[int]:
        qs = "[" + ",".join(f"{x:.7g}" for x in q) + "]"
        with store.db.connection() as conn:
            conn.execute(f"SET LOCAL hnsw.ef_search = {ef}")
            if flt:
                conn.execute("SET LOCAL hnsw.iterative_scan = strict_order")
            return [int(r[0]) for r in conn.execute(sql, [*params, qs]).fetchall()]

    run.sql = sql  # type: ignore[attr-defined]
    run.params = params  # type: ignore[attr-defined]
    return run


def count_query(store: Any, flt: Any) -> Any:
    """The count ``dense_search`` runs first to choose exact or HNSW search."""
    from hanlin.knowledge.stores.postgres_sql import filter_sql

    where, params = filter_sql(flt) if flt else ("true", [])
    sql = (
        f"SELECT count(*) FROM (SELECT 1 FROM kb_chunks c JOIN kb_documents d ON d.id = c.doc_id "
        f"WHERE c.kb_id = {store.kb} AND c.embedding IS NOT NULL AND ({where}) LIMIT %s) t"
    )

    def run(_q: np.ndarray, _i: int) -> list[int]:
        with store.db.connection() as conn:
            conn.execute(sql, [*params, store.exact_search_below + 1]).fetchone()
        return []

    return run


def explain(store: Any, q: np.ndarray, flt: Any) -> str:
    from hanlin.knowledge.stores.postgres_sql import filter_sql

    where, params = filter_sql(flt) if flt else ("true", [])
    qs = "[" + ",".join(f"{x:.7g}" for x in q) + "]"
    expr = f"c.embedding::vector({DIM}) <#> %s::vector({DIM})"
    sql = (
        f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT c.id, -({expr}) FROM kb_chunks c "
        f"JOIN kb_documents d ON d.id = c.doc_id WHERE c.kb_id = {store.kb} "
        f"AND c.embedding IS NOT NULL AND ({where}) ORDER BY {expr} LIMIT {K}"
    )
    with store.db.connection() as conn:
        conn.execute("SET LOCAL hnsw.ef_search = 40")
        if flt:
            conn.execute("SET LOCAL hnsw.iterative_scan = strict_order")
        rows = conn.execute(sql, [qs, *params, qs]).fetchall()
    plan = "\n".join(r[0] for r in rows)
    return re.sub(r"'\[[-0-9.e,]+\]'", "'[…query vector…]'", plan)


def run_backend(
    name: str,
    store: Any,
    pg: bool,
    qv: np.ndarray,
    qtok: list[list[str]],
    truth: Any,
    text_queries: int,
) -> dict[str, Any]:
    from hanlin.knowledge.filters import parse_filter

    flt = parse_filter(FILTER)
    row = row_of_ids(store, pg)
    res: dict[str, Any] = {}
    print(f"[{name}]", flush=True)

    def dense(f: Any) -> Any:
        return lambda q, _i: [c for c, _ in store.dense_search(q, K, f)]

    res["dense"] = measure("dense", dense(None), qv, truth["all"], row)
    res["dense, 10 % filter"] = measure("dense filtered", dense(flt), qv, truth["filtered"], row)
    tq = qv[:text_queries]  # BM25 in SQL is slow at scale: fewer queries keep the run bounded
    res["keyword"] = measure(
        "keyword", lambda q, i: [c for c, _ in store.keyword_search(qtok[i], K)], tq, None, row, 0
    )
    res["hybrid"] = measure("hybrid", lambda q, i: hybrid(store, q, qtok[i], None), tq, None, row)
    res["hybrid, 10 % filter"] = measure(
        "hybrid filtered", lambda q, i: hybrid(store, q, qtok[i], flt), tq, None, row
    )
    if pg:
        for kind in ("vector", "halfvec"):
            for ef in (40, 100, 200):
                for f, tag in ((None, ""), (flt, ", 10 % filter")):
                    key = f"{kind} ef_search {ef}{tag}"
                    t = truth["filtered" if f else "all"]
                    res[key] = measure(key, sql_search(store, kind, ef, f), qv, t, row)
        for f, tag in ((None, ""), (flt, ", 10 % filter")):
            res[f"store's row count before each dense search{tag}"] = measure(
                f"count{tag}", count_query(store, f), qv[:50], None, row, 0
            )
        res["EXPLAIN dense"] = explain(store, qv[0], None)
        res["EXPLAIN dense, 10 % filter"] = explain(store, qv[0], flt)
        print(res["EXPLAIN dense"], "\n", res["EXPLAIN dense, 10 % filter"], flush=True)
    return res


def live_insert_rate(store: Any, vecs: np.ndarray, vocab: list[str], n: int) -> float:
    """Chunks/s of ``write`` with the HNSW index(es) in place (2,000 chunks, then deleted)."""
    docs = next(iter(documents(n + 2000, vecs, vocab, n // CHUNKS_PER_DOC)))
    for d in docs:
        d.key = "extra-" + d.key
        d.metadata = {"group": -1}
    t0 = time.perf_counter()
    store.write(docs)
    store.flush()
    rate = sum(len(d.chunks) for d in docs) / (time.perf_counter() - t0)
    store.delete_documents([d.key for d in docs])
    store.flush()
    return round(rate)


def table(r: dict[str, Any]) -> str:
    lines = [
        f"n = {r['n']:,} chunks, {r['queries']} queries, k = {K}",
        "",
        "| backend | search | queries | p50 ms | p95 ms | recall@10 vs exact | short results |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for backend in ("embedded", "postgres"):
        for key, m in r.get(backend, {}).items():
            if isinstance(m, dict):
                rec = m.get("recall@10", "")
                nq = m.get("queries", r["queries"])
                lines.append(
                    f"| {backend} | {key} | {nq} | {m['p50 ms']} | {m['p95 ms']} | "
                    f"{rec} | {m['short']} |"
                )
    lines += ["", "| build | value |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in r["build"].items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="chunks (a multiple of 100)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument(
        "--text-queries", type=int, default=200, help="queries for keyword and hybrid search"
    )
    ap.add_argument("--maintenance-work-mem", default=None, help="default: ~3 KB per chunk")
    ap.add_argument("--shared-buffers", default="2GB")
    ap.add_argument("--skip-embedded", action="store_true")
    ap.add_argument("--out", type=Path, default=HERE / "out")
    args = ap.parse_args()
    n = args.n - args.n % CHUNKS_PER_DOC
    mwm = args.maintenance_work_mem or f"{max(256, n * 3 // 1024)}MB"
    t_start = time.perf_counter()
    vecs, centres = vectors(n)
    vocab = vocabulary()
    rng = np.random.default_rng(99)
    qv = centres[rng.integers(0, 1000, args.queries)]
    qv = qv + 0.6 * rng.standard_normal(qv.shape).astype(np.float32)
    qv = (qv / np.linalg.norm(qv, axis=1, keepdims=True)).astype(np.float32)
    qtok = [t.split() for t in texts(rng, vocab, args.queries, 3)]
    allowed = np.flatnonzero((np.arange(n) // CHUNKS_PER_DOC) % GROUPS == FILTER["group"])
    truth = {"all": exact_top(vecs, qv, None), "filtered": exact_top(vecs, qv, allowed)}
    build: dict[str, Any] = {"maintenance_work_mem": mwm, "shared_buffers": args.shared_buffers}
    result: dict[str, Any] = {"n": n, "queries": args.queries, "dim": DIM, "build": build}
    CACHE.mkdir(parents=True, exist_ok=True)
    if not args.skip_embedded:
        store = embedded_store(n, vecs, vocab, build)
        result["embedded"] = run_backend(
            "embedded", store, False, qv, qtok, truth, args.text_queries
        )
        store.close()
    server = pg_server(args.shared_buffers)
    try:
        store = pg_store(n, server.url, vecs, vocab, mwm, build)
        result["postgres"] = run_backend(
            "postgres", store, True, qv, qtok, truth, args.text_queries
        )
        build["postgres write with live HNSW indexes, chunks/s"] = live_insert_rate(
            store, vecs, vocab, n
        )
        print(build, flush=True)
    finally:
        server.stop()
    build["total run s"] = round(time.perf_counter() - t_start)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"pg_scale-{n}.json").write_text(json.dumps(result, indent=2))
    (args.out / f"pg_scale-{n}.md").write_text(table(result))
    print(table(result))


if __name__ == "__main__":
    main()
