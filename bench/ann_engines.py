"""Choose the ANN engine by measurement: usearch HNSW vs faiss IndexHNSWFlat vs exact numpy.

Vectors: ``synthetic()`` from ``bench/latency.py`` (1,000 centres, unit vectors scattered
around them, 512-d, the default model's width) at 100k and 200k; 200 queries drawn the same way
as ``latency.py`` does (a random centre + 0.6·noise, normalized). Ground truth is exact inner
product in float32 (= cosine, the vectors are unit length).

Engines (all single-threaded: build, search and BLAS):

* usearch ``cos`` f16, connectivity 16, expansion_add 48, expansion_search 96 (hanlin's
  ``vectors.PARAMS``);
* usearch ``cos`` f32, connectivity 16, expansion_add 128;
* faiss ``IndexHNSWFlat`` M=16, efConstruction 40, inner product on the normalized vectors;
* each HNSW graph searched at ef 64, 96 (hanlin's), 128 and 256 (a search-time setting);
* exact numpy: ``vectors @ q`` + ``argpartition``.

Reports build time, single-query p50/p95 latency (k=10), recall@10 vs exact, index size
(serialized bytes; usearch's ``memory_usage`` too), and removal: 10% of the vectors are removed
(usearch ``remove``, faiss ``remove_ids``) and recall@10 is re-measured against exact search over
the remaining vectors, checking that no removed key comes back.

    .bench-venv/bin/python bench/ann_engines.py                 # 100k and 200k (~7 min)
    .bench-venv/bin/python bench/ann_engines.py --sizes 100000  # 100k only
    .bench-venv/bin/python bench/ann_engines.py --skip-above    # also usearch f32 at 200k

By default the f32/expansion_add 128 usearch index is built at 100k only: single-threaded it
builds at ~700 vectors/s here, so 200k alone would take ~5 minutes.

Writes ``bench/out/ann_engines.md``. Needs ``faiss-cpu`` in the venv (not a hanlin dependency).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import gc
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from latency import DIM, synthetic  # noqa: E402

K = 10
EFS = (64, 96, 128, 256)  # search-time settings, all on the same graph


def pct(xs: Sequence[float], p: float) -> float:
    return float(np.percentile(np.asarray(xs) * 1000, p))


def make_queries(centres: np.ndarray, n: int, seed: int = 99) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q = centres[rng.integers(0, len(centres), n)] + 0.6 * rng.standard_normal((n, DIM)).astype(
        np.float32
    )
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def exact_topk(vectors: np.ndarray, queries: np.ndarray, alive: np.ndarray | None) -> np.ndarray:
    sims = queries @ vectors.T
    if alive is not None:
        sims[:, ~alive] = -np.inf
    top = np.argpartition(-sims, K, axis=1)[:, :K]
    return top


def recall(got: Sequence[Sequence[int]], truth: np.ndarray) -> float:
    return float(
        np.mean(
            [len(set(map(int, g)) & set(map(int, t))) / K for g, t in zip(got, truth, strict=True)]
        )
    )


def run_queries(search: Callable[[np.ndarray], Sequence[int]], queries: np.ndarray) -> tuple:
    for q in queries[:5]:  # warm-up
        search(q)
    results, times = [], []
    for q in queries:
        t = time.perf_counter()
        results.append(search(q))
        times.append(time.perf_counter() - t)
    return results, times


@dataclass
class Built:
    name: str
    build_s: float
    size_bytes: int
    ram_bytes: int | None
    searchers: dict[str, Callable[[np.ndarray], Sequence[int]]]
    remove: Callable[[np.ndarray], str]
    notes: list[str] = field(default_factory=list)


# --- engines -----------------------------------------------------------------------------------


def build_usearch(vectors: np.ndarray, dtype: str, expansion_add: int) -> Built:
    from usearch.index import Index

    index = Index(
        ndim=DIM,
        metric="cos",
        dtype=dtype,
        connectivity=16,
        expansion_add=expansion_add,
        expansion_search=96,
    )
    keys = np.arange(len(vectors), dtype=np.uint64)
    t0 = time.perf_counter()
    index.add(keys, vectors, threads=1)
    build_s = time.perf_counter() - t0

    def searcher(ef: int) -> Callable[[np.ndarray], Sequence[int]]:
        def search(q: np.ndarray) -> Sequence[int]:
            index.expansion_search = ef
            return index.search(q, K, threads=1).keys

        return search

    def remove(ids: np.ndarray) -> str:
        t = time.perf_counter()
        removed = index.remove(ids.astype(np.uint64))
        dt = time.perf_counter() - t
        # re-adding a removed key (the upsert path in vectors.py) must work too
        index.add(np.uint64(ids[0]), vectors[ids[0]], threads=1)
        back = int(ids[0]) in index
        index.remove(np.uint64(ids[0]))
        return (
            f"works: removed {int(removed):,} in {dt:.2f}s, len {len(index):,}, "
            f"re-add of a removed key ok: {back}"
        )

    return Built(
        name=f"usearch {dtype} M16 ef_add{expansion_add}",
        build_s=build_s,
        size_bytes=int(index.serialized_length),
        ram_bytes=int(index.memory_usage),
        searchers={f"ef_search {ef}": searcher(ef) for ef in EFS},
        remove=remove,
        notes=[f"usearch SIMD: {index.hardware_acceleration}"],
    )


def build_faiss(vectors: np.ndarray) -> Built:
    import faiss

    faiss.omp_set_num_threads(1)
    index = faiss.IndexHNSWFlat(DIM, 16, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 40
    t0 = time.perf_counter()
    index.add(vectors)
    build_s = time.perf_counter() - t0

    def searcher(ef: int) -> Callable[[np.ndarray], Sequence[int]]:
        def search(q: np.ndarray) -> Sequence[int]:
            index.hnsw.efSearch = ef
            return index.search(q[None, :], K)[1][0]

        return search

    def remove(ids: np.ndarray) -> str:
        try:
            n = index.remove_ids(ids.astype(np.int64))
        except RuntimeError as exc:
            msg = " ".join(str(exc).split())
            return f"fails: RuntimeError `…{msg[-110:]}`"
        return f"returned {n}"

    return Built(
        name="faiss HNSWFlat M16 efC40",
        build_s=build_s,
        size_bytes=int(faiss.serialize_index(index).nbytes),
        ram_bytes=None,
        searchers={f"efSearch {ef}": searcher(ef) for ef in EFS},
        remove=remove,
        notes=[f"faiss {faiss.__version__}"],
    )


def build_exact(vectors: np.ndarray) -> Built:
    state = {"v": vectors, "ids": np.arange(len(vectors))}

    def search(q: np.ndarray) -> Sequence[int]:
        sims = state["v"] @ q
        top = np.argpartition(-sims, K)[:K]
        return state["ids"][top[np.argsort(-sims[top])]]

    def remove(ids: np.ndarray) -> str:
        t = time.perf_counter()
        keep = np.ones(len(state["v"]), dtype=bool)
        keep[ids] = False
        state["v"], state["ids"] = state["v"][keep], state["ids"][keep]
        return f"works (row delete, copies the matrix): {time.perf_counter() - t:.2f}s"

    return Built("exact numpy f32", 0.0, int(vectors.nbytes), None, {"": search}, remove)


ENGINES: dict[str, Callable[[np.ndarray], Built]] = {
    "usearch-f16": lambda v: build_usearch(v, "f16", 48),
    "usearch-f32": lambda v: build_usearch(v, "f32", 128),
    "faiss": build_faiss,
    "exact": build_exact,
}


def bench_size(
    n: int, engines: Sequence[str], n_queries: int, remove_frac: float, skip: dict[str, int]
) -> list[str]:
    t0 = time.perf_counter()
    vectors, centres = synthetic(n)
    queries = make_queries(centres, n_queries)
    truth = exact_topk(vectors, queries, None)
    rng = np.random.default_rng(5)
    removed = rng.choice(n, int(n * remove_frac), replace=False)
    alive = np.ones(n, dtype=bool)
    alive[removed] = False
    truth_after = exact_topk(vectors, queries, alive)
    removed_set = set(map(int, removed))
    print(f"{n:,} vectors + ground truth in {time.perf_counter() - t0:.0f}s", flush=True)
    rows, notes = [], []
    for name in engines:
        if n > skip.get(name, n):
            rows.append(f"| {n:,} | {name} | not run (--skip-above, build time) | | | | | | |")
            continue
        built = ENGINES[name](vectors)
        print(f"  {built.name}: built in {built.build_s:.1f}s", flush=True)
        ram = f"{built.ram_bytes / 1e6:.0f}" if built.ram_bytes is not None else "—"
        for setting, search in built.searchers.items():
            got, times = run_queries(search, queries)
            row = (
                f"| {n:,} | {built.name} | {setting or '—'} | {built.build_s:.1f} | "
                f"{pct(times, 50):.3f} | {pct(times, 95):.3f} | {recall(got, truth):.4f} | "
                f"{built.size_bytes / 1e6:.0f} | {ram} |"
            )
            print(row, flush=True)
            rows.append(row)
        outcome = built.remove(removed)
        after = ""
        if outcome.startswith("works"):
            # hanlin's search setting (ef 96); exact has a single searcher keyed ""
            search = next(v for k, v in built.searchers.items() if k.endswith(" 96") or not k)
            got, times = run_queries(search, queries)
            leaked = sum(int(i) in removed_set for g in got for i in g)
            after = (
                f"; after removal (ef 96): recall@10 {recall(got, truth_after):.4f} vs exact "
                f"over the remaining, p50 {pct(times, 50):.3f} ms, removed keys returned: {leaked}"
            )
        what = f"remove {len(removed):,} ({remove_frac:.0%})"
        note = f"- {n:,} {built.name}: {what} — {outcome}{after}"
        print(note, flush=True)
        notes.append(note)
        notes += [f"- {x}" for x in built.notes if f"- {x}" not in notes]
        del built
        gc.collect()
    return [*rows, "", *notes, ""]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="*", type=int, default=[100_000, 200_000])
    p.add_argument("--engines", nargs="*", default=list(ENGINES), choices=list(ENGINES))
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--remove-frac", type=float, default=0.1)
    p.add_argument(
        "--skip-above",
        nargs="*",
        default=["usearch-f32=100000"],
        metavar="ENGINE=N",
        help="do not build ENGINE above N vectors (default: usearch-f32 above 100k, its "
        "single-threaded build alone would take ~5 minutes at 200k)",
    )
    p.add_argument("--out", type=Path, default=HERE / "out" / "ann_engines.md")
    args = p.parse_args(argv)
    skip = {k: int(v) for k, v in (s.split("=") for s in args.skip_above)}

    import usearch

    t_all = time.perf_counter()
    lines = [
        "# ANN engine choice: usearch vs faiss HNSW vs exact",
        "",
        f"Python {platform.python_version()}, numpy {np.__version__}, usearch "
        f"{usearch.__version__}, {os.cpu_count()} CPU cores (shared); everything single-threaded. "
        f"{DIM}-d clustered unit vectors (`latency.synthetic`), {args.queries} queries, k={K}. "
        "Latency is one query per call. Index MB = serialized size (exact: the f32 matrix); "
        "RAM MB = usearch `memory_usage`.",
        "",
        "| vectors | engine | search setting | build s | p50 ms | p95 ms | recall@10 | index MB "
        "| RAM MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    notes: list[str] = []
    for n in args.sizes:
        out = bench_size(n, args.engines, args.queries, args.remove_frac, skip)
        split = out.index("")
        lines += out[:split]
        notes += out[split + 1 :]
        gc.collect()
    lines += ["", "Removal:", "", *[x for x in notes if x]]
    lines += ["", f"Total run time {time.perf_counter() - t_all:.0f}s.", ""]
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
