"""Search latency and ANN recall at scale: p50/p95 per query for dense, keyword and hybrid
search, and dense recall@10 against exact search, on synthetic clustered vectors with
Zipf-distributed text (the real 512-d vector width of the default model).

    .venv/bin/python bench/latency.py --chunks 100000
    .venv/bin/python bench/latency.py --chunks 1000000

The knowledge base is built once in bench/.cache/home (reused by later runs). Latency is
measured through ``KnowledgeBase.search`` with a precomputed query vector; the query-embedding
time of the bundled model is measured separately and reported next to it.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DIM = 512
VOCAB = 50_000
WORDS_PER_CHUNK = 60
CHUNKS_PER_DOC = 100


def synthetic(n: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Clustered unit vectors: 1,000 centres, points scattered around them."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((1000, DIM)).astype(np.float32)
    labels = rng.integers(0, 1000, n)
    out = np.empty((n, DIM), dtype=np.float32)
    for i in range(0, n, 100_000):
        part = centres[labels[i : i + 100_000]] + 0.6 * rng.standard_normal(
            (len(labels[i : i + 100_000]), DIM)
        ).astype(np.float32)
        out[i : i + 100_000] = part / np.linalg.norm(part, axis=1, keepdims=True)
    return out, centres


def words(rng: np.random.Generator, n: int) -> list[str]:
    ranks = np.minimum(rng.zipf(1.2, n), VOCAB)
    return [f"w{r}" for r in ranks]


def build(kb_name: str, n: int) -> None:
    from hanlin import KnowledgeBase
    from hanlin.knowledge.base import Chunk
    from hanlin.knowledge.stores.base import ChunkWrite, DocumentWrite

    kb = KnowledgeBase.create(kb_name, exist_ok=True)
    have = kb.store.stats().chunks
    if have >= n:
        kb.close()
        return
    vectors, _ = synthetic(n)
    rng = np.random.default_rng(11)
    t0 = time.perf_counter()
    batch: list[DocumentWrite] = []
    for d in range(have // CHUNKS_PER_DOC, n // CHUNKS_PER_DOC):
        chunks = []
        for j in range(CHUNKS_PER_DOC):
            i = d * CHUNKS_PER_DOC + j
            text = " ".join(words(rng, WORDS_PER_CHUNK))
            c = Chunk(text=text, ord=j, char_start=0, char_end=len(text), n_tokens=60)
            chunks.append(ChunkWrite(c, text, f"h{i}", vectors[i]))
        batch.append(
            DocumentWrite(
                key=f"doc{d}",
                file_path=None,
                source=f"doc{d}",
                title=f"doc {d}",
                format="txt",
                content_hash=str(d),
                metadata={"group": d % 10},
                n_chars=0,
                chunks=chunks,
            )
        )
        if len(batch) * CHUNKS_PER_DOC >= 20_000:
            kb.store.write(batch)
            batch = []
            done = (d + 1) * CHUNKS_PER_DOC
            print(f"  built {done:,} chunks, {time.perf_counter() - t0:.0f}s", flush=True)
    if batch:
        kb.store.write(batch)
    kb.store.flush()
    print(f"built {n:,} chunks in {time.perf_counter() - t0:.0f}s", flush=True)
    kb.close()


def pct(xs: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(xs) * 1000, p))


def measure(kb_name: str, n: int, queries: int) -> dict[str, object]:
    from hanlin import KnowledgeBase

    vectors, centres = synthetic(n)
    rng = np.random.default_rng(99)
    t0 = time.perf_counter()
    kb = KnowledgeBase(kb_name)
    kb.search("w1", k=1, mode="dense", query_vector=vectors[0])  # loads the ANN index
    open_s = time.perf_counter() - t0
    qv = centres[rng.integers(0, 1000, queries)] + 0.6 * rng.standard_normal((queries, DIM)).astype(
        np.float32
    )
    qv /= np.linalg.norm(qv, axis=1, keepdims=True)
    texts = [" ".join(words(rng, 4)) for _ in range(queries)]
    result: dict[str, object] = {"chunks": n, "queries": queries, "open_s": round(open_s, 2)}
    recall = []
    for mode in ("dense", "keyword", "hybrid"):
        times = []
        for q, text in zip(qv, texts, strict=True):
            t = time.perf_counter()
            hits = kb.search(text, k=10, mode=mode, query_vector=q)  # type: ignore[arg-type]
            times.append(time.perf_counter() - t)
            if mode == "dense":
                exact = np.argsort(-(vectors @ q))[:10]
                got = {h.chunk.id for h in hits}
                ids = {int(i) + 1 for i in exact}  # chunk ids are 1-based insertion order
                recall.append(len(got & ids) / 10)
        result[mode] = {"p50_ms": round(pct(times, 50), 2), "p95_ms": round(pct(times, 95), 2)}
        print(mode, result[mode], flush=True)
    result["dense_recall@10_vs_exact"] = round(float(np.mean(recall)), 4)
    embed = kb.embedder
    embed.embed_query("warm up")
    times = []
    for text in [
        "什么是混合检索",
        "how does BM25 rank documents",
        "向量数据库的索引",
        "GPU memory",
    ] * 10:
        t = time.perf_counter()
        embed.embed_query(text + str(len(times)))
        times.append(time.perf_counter() - t)
    result["query_embedding"] = {
        "p50_ms": round(pct(times, 50), 2),
        "p95_ms": round(pct(times, 95), 2),
    }
    kb.close()
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--build-only", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("HANLIN_HOME", str(HERE / ".cache" / "home"))
    name = f"latency-{args.chunks // 1000}k"
    build(name, args.chunks)
    if args.build_only:
        return
    result = measure(name, args.chunks, args.queries)
    print(json.dumps(result, indent=2))
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / f"latency-{args.chunks // 1000}k.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
