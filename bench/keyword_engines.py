"""Choose the BM25 keyword engine by measurement: SQLite FTS5 vs tantivy vs bm25s.

Every engine gets the same tokens: each corpus is analyzed ONCE with hanlin's ``Analyzer`` and
indexed as space-joined tokens, so only the engine differs.

* FTS5: a contentless table (``content=''``), ``tokenize="unicode61 remove_diacritics 0
  tokenchars '.'"`` (so it re-splits the space-joined analyzer tokens into exactly those tokens
  — "3.5" stays whole, "é" is not folded; checked against ``fts5vocab``), quoted terms OR-ed,
  ``ORDER BY rank`` (= ``bm25()``, k1=1.2 b=0.75), ``optimize`` after the bulk insert.
* tantivy: hanlin's own ``KeywordIndex`` (keyword.py: whitespace tokenizer, term queries OR-ed
  with ``boolean_query``, one writer thread, 64 MB heap), so build and query are what the app does.
* bm25s: ``BM25(k1=1.2, b=0.75, method="lucene")`` over the token lists, numpy backend; an
  in-memory sparse matrix with no incremental add/delete (a change is a full rebuild).

Part 1, real corpora (``shared/eval``): SciFact (5,183 docs, title + text, train qrels) and
DRCD dev (1,000 docs): nDCG@10, single-query latency p50/p95 (engine only, the query's analysis
is done beforehand), index build time (tokens → searchable) and on-disk size.

Part 2, scale: synthetic docs of 60 Zipf(1.2) words over a 50k vocabulary (``words()`` from
``bench/latency.py``) at 100k and 1M docs; 4-word OR queries (also ``words()``): p50/p95 latency,
build time, on-disk size. Query loops stop after ``--max-query-s`` seconds per engine and size
(the number of queries measured is reported).

    .bench-venv/bin/python bench/keyword_engines.py
    .bench-venv/bin/python bench/keyword_engines.py --sizes 100000 --engines fts5 tantivy

Writes ``bench/out/keyword_engines.md``. Single-threaded throughout (2 shared cores here).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import gc
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from hanlin.knowledge.evaluation import load_beir, ndcg_at_k  # noqa: E402
from hanlin.knowledge.tokenize import Analyzer  # noqa: E402
from latency import WORDS_PER_CHUNK, words  # noqa: E402

DEFAULT_EVAL = HERE.parent.parent / "shared" / "eval"
SETS = {"scifact": "scifact", "drcd": "zh/drcd-dev"}
ENGINES = ("fts5", "tantivy", "bm25s")
FTS5_TOKENIZE = "unicode61 remove_diacritics 0 tokenchars '.'"


def dir_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def pct(xs: Sequence[float], p: float) -> float:
    return float(np.percentile(np.asarray(xs) * 1000, p))


# --- engines: build(docs as space-joined token strings) and search(tokens, k) -> doc indices ---


class Fts5:
    name = "fts5"

    def __init__(self, workdir: Path) -> None:
        self.path = workdir / "fts5.db"
        self.conn = sqlite3.connect(self.path)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute(
            f"CREATE VIRTUAL TABLE t USING fts5(body, content='', tokenize=\"{FTS5_TOKENIZE}\")"
        )

    def build(self, docs: Sequence[str]) -> None:
        with self.conn:
            self.conn.executemany(
                "INSERT INTO t(rowid, body) VALUES (?, ?)", ((i, d) for i, d in enumerate(docs))
            )
        with self.conn:
            self.conn.execute("INSERT INTO t(t) VALUES ('optimize')")
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def vocab(self) -> set[str]:
        self.conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS v USING fts5vocab(t, 'row')")
        return {r[0] for r in self.conn.execute("SELECT term FROM v")}

    def search(self, tokens: Sequence[str], k: int) -> list[int]:
        terms = list(dict.fromkeys(t for t in tokens if t))
        if not terms:
            return []
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        rows = self.conn.execute(
            "SELECT rowid FROM t WHERE t MATCH ? ORDER BY rank LIMIT ?", (match, k)
        ).fetchall()
        return [r[0] for r in rows]

    def size(self) -> int:
        return dir_size(self.path)

    def close(self) -> None:
        self.conn.close()


class Tantivy:
    name = "tantivy"

    def __init__(self, workdir: Path) -> None:
        from hanlin.knowledge.indexes.keyword import KeywordIndex

        self.dir = workdir
        self.index = KeywordIndex(workdir, "bench")

    def build(self, docs: Sequence[str]) -> None:
        batch = 20_000  # the store writes in batches; one commit at the end, as a rebuild does
        for i in range(0, len(docs), batch):
            self.index.upsert([(i + j, d) for j, d in enumerate(docs[i : i + batch])])
        self.index.commit()
        assert self.index.count() == len(docs)

    def search(self, tokens: Sequence[str], k: int) -> list[int]:
        return [i for i, _ in self.index.search(tokens, k)]

    def size(self) -> int:
        return dir_size(self.index.dir)

    def close(self) -> None:
        self.index.rollback()


class Bm25s:
    name = "bm25s"

    def __init__(self, workdir: Path) -> None:
        import bm25s

        self.dir = workdir / "bm25s"
        self.model = bm25s.BM25(k1=1.2, b=0.75, method="lucene")

    def build(self, docs: Sequence[str]) -> None:
        self.model.index([d.split() for d in docs], show_progress=False)
        self.model.save(str(self.dir))
        gc.collect()

    def search(self, tokens: Sequence[str], k: int) -> list[int]:
        terms = [t for t in dict.fromkeys(tokens) if t in self.model.vocab_dict]
        if not terms:
            return []
        k = min(k, self.model.scores["num_docs"])
        docs, scores = self.model.retrieve([terms], k=k, show_progress=False, n_threads=0)
        return [int(d) for d, s in zip(docs[0], scores[0], strict=True) if s > 0]

    def size(self) -> int:
        return dir_size(self.dir)

    def close(self) -> None:
        del self.model
        gc.collect()


ENGINE_CLASSES = {"fts5": Fts5, "tantivy": Tantivy, "bm25s": Bm25s}


def build_engine(name: str, docs: Sequence[str], workdir: Path) -> tuple[object, float]:
    (workdir / name).mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    engine = ENGINE_CLASSES[name](workdir / name)
    engine.build(docs)  # type: ignore[attr-defined]
    return engine, time.perf_counter() - t0


def time_queries(
    engine: object, queries: Sequence[Sequence[str]], k: int, max_s: float
) -> tuple[list[list[int]], list[float]]:
    search = engine.search  # type: ignore[attr-defined]
    for q in queries[:5]:  # warm-up (page cache, lazy structures)
        search(q, k)
    results, times = [], []
    start = time.perf_counter()
    for q in queries:
        t = time.perf_counter()
        results.append(search(q, k))
        times.append(time.perf_counter() - t)
        if time.perf_counter() - start > max_s:
            break
    return results, times


# --- part 1: real corpora ----------------------------------------------------------------------


def real_sets(eval_dir: Path, engines: Sequence[str], workroot: Path, max_s: float) -> list[str]:
    analyzer = Analyzer()
    analyzer.warm_up()
    rows = [
        "## Real corpora (nDCG@10, single-query latency, build)",
        "",
        f"Analyzer: `{analyzer.version}`; tokens computed once, shared by all engines. Latency is "
        "the engine call only (query analysis excluded). Build = token strings → searchable "
        "index (FTS5 incl. `optimize`; tantivy incl. commit + merge; bm25s incl. save).",
        "",
        "| set | docs | queries | engine | nDCG@10 | p50 ms | p95 ms | build s | disk MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for set_name, folder in SETS.items():
        ds = load_beir(eval_dir / folder, split=None)
        ids = list(ds.corpus)
        t0 = time.perf_counter()
        docs = [
            " ".join(analyzer.analyze(f"{d['title']}\n{d['text']}")) for d in ds.corpus.values()
        ]
        t_an = time.perf_counter() - t0
        qids = list(ds.queries)
        queries = [analyzer.analyze(ds.queries[q]) for q in qids]
        print(f"{set_name}: {len(docs)} docs analyzed in {t_an:.1f}s, {len(qids)} queries")
        for name in engines:
            work = workroot / f"{set_name}-{name}"
            engine, build_s = build_engine(name, docs, work)
            if name == "fts5":
                want = {t for d in docs for t in d.split()}
                got = engine.vocab()  # type: ignore[attr-defined]
                notes.append(
                    f"- {set_name}: FTS5 vocabulary == analyzer vocabulary: {got == want} "
                    f"({len(got):,} vs {len(want):,} distinct tokens)."
                )
            results, times = time_queries(engine, queries, 10, max_s)
            ndcg = [
                ndcg_at_k([ids[i] for i in r], ds.qrels[q], 10)
                for r, q in zip(results, qids, strict=False)
            ]
            size = engine.size()  # type: ignore[attr-defined]
            engine.close()  # type: ignore[attr-defined]
            row = (
                f"| {set_name} | {len(docs):,} | {len(times):,} | {name} | "
                f"{np.mean(ndcg):.4f} | {pct(times, 50):.3f} | {pct(times, 95):.3f} | "
                f"{build_s:.2f} | {size / 1e6:.1f} |"
            )
            print(row, flush=True)
            rows.append(row)
            shutil.rmtree(work, ignore_errors=True)
    return [*rows, "", *notes]


# --- part 2: scale -----------------------------------------------------------------------------


def synthetic_docs(n: int, seed: int = 11) -> list[str]:
    """``n`` docs of 60 words from ``latency.words()`` (generated in blocks for speed)."""
    rng = np.random.default_rng(seed)
    docs: list[str] = []
    block = 10_000
    for start in range(0, n, block):
        m = min(block, n - start)
        ws = words(rng, m * WORDS_PER_CHUNK)
        docs.extend(
            " ".join(ws[j : j + WORDS_PER_CHUNK]) for j in range(0, len(ws), WORDS_PER_CHUNK)
        )
    return docs


def scale(
    sizes: Sequence[int],
    engines: Sequence[str],
    workroot: Path,
    n_queries: int,
    max_s: float,
    skip: dict[str, int],
) -> list[str]:
    rows = [
        "## Scale (synthetic: 60 Zipf(1.2) words/doc over 50k words; 4-word OR queries, top 10)",
        "",
        "| docs | engine | queries | p50 ms | p95 ms | build s | docs/s built | disk MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    qrng = np.random.default_rng(99)
    queries = [words(qrng, 4) for _ in range(n_queries)]
    for n in sizes:
        t0 = time.perf_counter()
        docs = synthetic_docs(n)
        print(f"generated {n:,} docs in {time.perf_counter() - t0:.0f}s", flush=True)
        for name in engines:
            if n > skip.get(name, n):
                rows.append(f"| {n:,} | {name} | — | not run (see notes) | | | | |")
                continue
            work = workroot / f"scale-{n}-{name}"
            engine, build_s = build_engine(name, docs, work)
            print(f"  {name}: built in {build_s:.1f}s", flush=True)
            _, times = time_queries(engine, queries, 10, max_s)
            size = engine.size()  # type: ignore[attr-defined]
            engine.close()  # type: ignore[attr-defined]
            del engine
            row = (
                f"| {n:,} | {name} | {len(times):,} | {pct(times, 50):.2f} | "
                f"{pct(times, 95):.2f} | {build_s:.1f} | {n / build_s:,.0f} | {size / 1e6:.0f} |"
            )
            print(row, flush=True)
            rows.append(row)
            shutil.rmtree(work, ignore_errors=True)
            gc.collect()
        del docs
        gc.collect()
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--eval-dir", type=Path, default=Path(os.environ.get("HANLIN_EVAL", DEFAULT_EVAL))
    )
    p.add_argument("--engines", nargs="*", default=list(ENGINES), choices=ENGINES)
    p.add_argument("--sizes", nargs="*", type=int, default=[100_000, 1_000_000])
    p.add_argument("--queries", type=int, default=300, help="synthetic queries per size")
    p.add_argument("--max-query-s", type=float, default=45.0, help="per engine and size")
    p.add_argument(
        "--skip-above",
        nargs="*",
        default=[],
        metavar="ENGINE=N",
        help="do not run ENGINE on sizes above N docs",
    )
    p.add_argument("--no-real", action="store_true", help="skip the real-corpus part")
    p.add_argument("--out", type=Path, default=HERE / "out" / "keyword_engines.md")
    args = p.parse_args(argv)
    skip = {k: int(v) for k, v in (s.split("=") for s in args.skip_above)}

    import bm25s
    import tantivy

    t_all = time.perf_counter()
    lines = [
        "# BM25 engine choice: SQLite FTS5 vs tantivy vs bm25s",
        "",
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"tantivy-py {getattr(tantivy, '__version__', '0.27')}, bm25s {bm25s.__version__}, "
        f"{os.cpu_count()} CPU cores (shared), single-threaded engines.",
        "",
    ]
    cache = HERE / ".cache"  # gitignored; the system temp dir may be a small tmpfs
    cache.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        root = Path(tmp)
        if not args.no_real:
            lines += real_sets(args.eval_dir, args.engines, root, args.max_query_s)
            lines.append("")
        if args.sizes:
            lines += scale(args.sizes, args.engines, root, args.queries, args.max_query_s, skip)
    lines += ["", f"Total run time {time.perf_counter() - t_all:.0f}s.", ""]
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
