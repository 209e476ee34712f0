"""Ingest throughput and Chinese retrieval quality, Hanlin vs LlamaIndex, side by side in one run.

    .bench-venv/bin/python bench/ingest.py            # needs the bench venv (see bench/README.md)
    .bench-venv/bin/python bench/ingest.py --rounds 4 # H L, L H, …: fresh processes, ingest only

The corpus is ≥ 5,000 mixed documents built from the shared evaluation sets: SciFact abstracts
as Markdown and HTML files, DRCD and CMRC 2018 paragraphs as text files named by their ids.
Both systems ingest the same folder with the same embedding model (``fast-use``) and the same
chunk budget; then a fixed sample of DRCD/CMRC questions measures nDCG@10 on what each built.
Hanlin also reports the time of a no-change ``kb sync``. Results: bench/out/ingest.json/.md.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
EVAL = Path(os.environ.get("HANLIN_EVAL", HERE.parents[1] / "shared" / "eval"))
ZH = {"drcd": "zh/drcd-dev", "cmrc": "zh/cmrc2018-trial"}


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def build_corpus(root: Path, n_scifact: int) -> Path:
    """Write the mixed folder once (cached)."""
    stamp = root / ".complete"
    if stamp.exists():
        return root
    docs = read_jsonl(EVAL / "scifact" / "corpus.jsonl")[:n_scifact]
    for i, d in enumerate(docs):
        folder = root / "en" / f"part{i // 500:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        if i % 4 == 3:
            body = "".join(f"<p>{html.escape(p)}</p>" for p in d["text"].split("\n") if p)
            (folder / f"{d['_id']}.html").write_text(
                f"<html><head><title>{html.escape(d['title'])}</title></head><body>"
                f"<nav>Home | Journals</nav><article><h1>{html.escape(d['title'])}</h1>"
                f"{body}</article><footer>© publisher</footer></body></html>",
                "utf-8",
            )
        else:
            (folder / f"{d['_id']}.md").write_text(f"# {d['title']}\n\n{d['text']}\n", "utf-8")
    for name, rel in ZH.items():
        folder = root / "zh" / name
        folder.mkdir(parents=True, exist_ok=True)
        for d in read_jsonl(EVAL / rel / "corpus.jsonl"):
            (folder / f"{d['_id']}.txt").write_text(
                (d.get("title", "") + "\n\n" if d.get("title") else "") + d["text"], "utf-8"
            )
    stamp.touch()
    return root


def _children_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def folder_stats(root: Path) -> tuple[int, int]:
    files = [p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")]
    return len(files), sum(p.stat().st_size for p in files)


def sample_queries(n: int) -> dict[str, list[tuple[str, str, dict[str, int]]]]:
    from hanlin.knowledge.evaluation import load_beir

    out = {}
    for name, rel in ZH.items():
        data = load_beir(EVAL / rel)
        qids = sorted(q for q in data.queries if q in data.qrels)
        random.Random(13).shuffle(qids)
        out[name] = [(q, data.queries[q], data.qrels[q]) for q in qids[:n]]
    return out


def evaluate(
    search: Any, queries: dict[str, list[tuple[str, str, dict[str, int]]]]
) -> dict[str, dict[str, Any]]:
    from hanlin.knowledge.evaluation import ndcg_at_k

    scores: dict[str, dict[str, Any]] = {}
    for mode in ("keyword", "dense", "hybrid"):
        for name, items in queries.items():
            total = 0.0
            t0 = time.perf_counter()
            try:
                for _, text, qrels in items:
                    total += ndcg_at_k(search(text, mode), qrels, 10)
            except Exception as exc:  # an anchor failing on one mode still reports the rest
                scores.setdefault(name, {})[f"{mode}_error"] = f"{type(exc).__name__}: {exc}"
                print(f"    {name} {mode}: FAILED {exc!r}", flush=True)
                continue
            scores.setdefault(name, {})[mode] = round(total / len(items), 4)
            scores[name][f"{mode}_ms"] = round((time.perf_counter() - t0) / len(items) * 1e3, 1)
            print(f"    {name} {mode}: nDCG@10 {scores[name][mode]}", flush=True)
    return scores


def run_hanlin(folder: Path, queries: dict[str, Any]) -> dict[str, Any]:
    os.environ["HANLIN_HOME"] = tempfile.mkdtemp(prefix="hanlin-bench-")
    from hanlin import KnowledgeBase

    t0 = time.perf_counter()
    cpu0, kids0 = time.process_time(), _children_cpu()
    kb = KnowledgeBase.create("ingest", embedding_model="fast-use")
    report = kb.add(folder)
    ingest_s = time.perf_counter() - t0
    # CPU-seconds are robust on a shared machine where wall-clock is not; the embedding
    # workers are child processes, counted once they have exited (kb.add closes them)
    cpu = {
        "main_cpu_s": round(time.process_time() - cpu0, 1),
        "workers_cpu_s": round(_children_cpu() - kids0, 1),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }
    print(f"  ingest {ingest_s:.1f}s, {cpu}", flush=True)
    t0 = time.perf_counter()
    again = kb.sync()
    sync_s = time.perf_counter() - t0
    assert again.files_unchanged == report.files_seen, "a no-change sync must change nothing"

    def search(text: str, mode: str) -> list[str]:
        hits = kb.search(text, k=20, mode=mode)  # type: ignore[arg-type]
        return list(dict.fromkeys(Path(h.chunk.source).stem for h in hits))

    quality = evaluate(search, queries)
    stats = kb.store.stats()
    kb.close()
    return {
        "ingest_s": round(ingest_s, 1),
        **cpu,
        "sync_nochange_s": round(sync_s, 2),
        "documents": stats.documents,
        "chunks": stats.chunks,
        "skipped": len(report.skipped),
        "quality": quality,
    }


def run_llamaindex(folder: Path, queries: dict[str, Any]) -> dict[str, Any]:
    from anchor_llamaindex import ingest_folder_llamaindex, search_llamaindex

    t0 = time.perf_counter()
    cpu0 = time.process_time()
    index, bm25, timings = ingest_folder_llamaindex(folder, "fast-use", show_progress=False)
    ingest_s = time.perf_counter() - t0
    cpu = {
        "main_cpu_s": round(time.process_time() - cpu0, 1),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }
    print(f"  ingest {ingest_s:.1f}s, {cpu}, timings {timings}", flush=True)

    def search(text: str, mode: str) -> list[str]:
        hits = search_llamaindex(index, bm25, text, 20, mode)  # type: ignore[arg-type]
        return list(dict.fromkeys(Path(h.file_path or "").stem for h in hits))

    quality = evaluate(search, queries)
    return {
        "ingest_s": round(ingest_s, 1),
        **cpu,
        "timings": timings,
        "chunks": len(index.docstore.docs),
        "quality": quality,
    }


def rounds(n: int, argv: list[str]) -> dict[str, Any]:
    """Alternate the two systems n times (H L, L H, H L, …), each in a fresh process, timing
    the ingest only (quality: run without --rounds). Returns every run and the median ratio."""
    import statistics
    import subprocess
    import sys

    runs: list[dict[str, Any]] = []
    for r in range(n):
        order = ["hanlin", "llamaindex"] if r % 2 == 0 else ["llamaindex", "hanlin"]
        for name in order:
            out = Path(tempfile.mkdtemp(prefix="ingest-round-")) / "r.json"
            cmd = [
                sys.executable,
                __file__,
                *argv,
                "--only",
                name,
                "--out",
                str(out),
                "--no-quality",
            ]
            print(f"== round {r + 1}/{n}: {name}", flush=True)
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            res = json.loads(out.read_text())[name]
            runs.append({"round": r + 1, "system": name, **res})
            print(f"   {res['ingest_s']} s, load {res['load_avg']}", flush=True)
    times = {s: [x["ingest_s"] for x in runs if x["system"] == s] for s in ("hanlin", "llamaindex")}
    ratios = [lt / ht for ht, lt in zip(times["hanlin"], times["llamaindex"], strict=True)]
    return {
        "runs": runs,
        "ratios": [round(x, 3) for x in ratios],
        "median_s": {s: statistics.median(t) for s, t in times.items()},
        "median_ratio": round(statistics.median(ratios), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scifact-docs", type=int, default=3800)
    ap.add_argument("--queries", type=int, default=400, help="questions per Chinese set")
    ap.add_argument("--only", choices=["hanlin", "llamaindex"], default=None)
    ap.add_argument(
        "--rounds",
        type=int,
        default=0,
        help="alternate the systems N times in fresh processes, timing the ingest only",
    )
    ap.add_argument("--no-quality", action="store_true", help="time the ingest only")
    ap.add_argument("--out", type=Path, default=HERE / "out" / "ingest.json")
    args = ap.parse_args()
    # not under a dot-folder: LlamaIndex skips "hidden" paths
    folder = build_corpus(HERE / "data" / f"ingest-corpus-{args.scifact_docs}", args.scifact_docs)
    n_files, n_bytes = folder_stats(folder)
    print(f"corpus: {n_files} files, {n_bytes / 1e6:.1f} MB", flush=True)
    result: dict[str, Any] = {"files": n_files, "bytes": n_bytes, "queries_per_set": args.queries}
    if args.rounds:
        argv = ["--scifact-docs", str(args.scifact_docs), "--queries", str(args.queries)]
        result["rounds"] = rounds(args.rounds, argv)
        print(json.dumps({k: v for k, v in result["rounds"].items() if k != "runs"}), flush=True)
    else:
        queries = {} if args.no_quality else sample_queries(args.queries)
        runners = {"hanlin": run_hanlin, "llamaindex": run_llamaindex}
        for name, run in runners.items():
            if args.only and name != args.only:
                continue
            print(f"== {name}", flush=True)
            r = run(folder, queries)
            r["docs_per_s"] = round(n_files / r["ingest_s"], 1)
            r["mb_per_s"] = round(n_bytes / 1e6 / r["ingest_s"], 3)
            result[name] = r
            print(json.dumps(r, indent=2), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
