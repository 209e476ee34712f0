"""Gateway memory: RSS over 100k streamed calls through Hanlin's ``Gateway`` (target: ≤ 5 % growth).

    .bench-venv/bin/python bench/gateway_memory.py            # 100,000 calls, ~concurrency 50
    .bench-venv/bin/python bench/gateway_memory.py --plot     # also bench/out/gateway_memory.png

The fake upstream runs in a separate process (as in ``gateway_overhead.py``). Workers stream
calls through ``Gateway.astream`` and consume every event; RSS of this process is sampled every
5,000 calls. Growth is measured from the sample after the warm-up (10,000 calls: pools, caches,
the SQLite page cache are full by then) to the last one. Every call also lands in the usage
ledger (``HANLIN_HOME/usage.db``, a temporary directory; background writer): that is part of what
is measured, and the row count is checked at the end. Results: bench/out/gateway_memory.json.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gateway_overhead import (
    BLOCKED,
    MESSAGES,
    Upstream,
    guard_loopback,
    load,
    temp_home,
    versions,
)

HERE = Path(__file__).resolve().parent


def rss_mb() -> float:
    """Resident set size of this process, MiB."""
    try:
        import psutil

        return float(psutil.Process().memory_info().rss) / 2**20
    except ImportError:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("cannot read RSS")


def backlog(gw: Any) -> int | None:
    """Records waiting for the ledger's writer (None if the ledger does not expose its queue)."""
    q = getattr(gw.ledger, "_queue", None)
    return q.qsize() if q is not None else None


async def run(args: argparse.Namespace, upstream: Upstream, home: Path) -> dict[str, Any]:
    from hanlin.config import load_settings
    from hanlin.models.gateway import Gateway

    settings = load_settings(
        models={"endpoints": {"fake": {"base_url": upstream.url}}, "default": "fake/m"}
    )
    gw = Gateway(settings)
    samples: list[dict[str, Any]] = [
        {"calls": 0, "rss_mb": round(rss_mb(), 2), "s": 0.0, "load": load()}
    ]
    done = 0
    started = 0
    errors = 0
    first_error = ""
    t0 = time.perf_counter()

    async def worker() -> None:
        nonlocal done, started, errors, first_error
        while started < args.calls:
            started += 1
            try:
                s = gw.astream(MESSAGES, "fake/m")
                async for _ in s:
                    pass
                if s.response is None or not s.response.text:
                    raise RuntimeError("empty stream")
            except Exception as exc:
                errors += 1
                first_error = first_error or f"{type(exc).__name__}: {exc}"[:300]
            done += 1
            if done % args.every == 0:
                samples.append(
                    {
                        "calls": done,
                        "rss_mb": round(rss_mb(), 2),
                        "s": round(time.perf_counter() - t0, 1),
                        "load": load(),
                        "ledger_backlog": backlog(gw),
                    }
                )
                print(
                    f"{done:>7,} calls  RSS {samples[-1]['rss_mb']:.1f} MiB  "
                    f"{done / (time.perf_counter() - t0):.0f} calls/s  load {load()}",
                    flush=True,
                )

    try:
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        seconds = time.perf_counter() - t0
        gw.ledger.flush()
        gc.collect()
        after_gc = rss_mb()
    finally:
        await gw.aclose()
    db = home / "usage.db"
    conn = sqlite3.connect(db)
    try:
        rows = int(conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0])
    finally:
        conn.close()
    warm = next((s for s in samples if s["calls"] >= args.warmup), samples[-1])
    end = samples[-1]
    growth = (end["rss_mb"] - warm["rss_mb"]) / warm["rss_mb"] * 100
    return {
        "calls": args.calls,
        "concurrency": args.concurrency,
        "errors": errors,
        "first_error": first_error or None,
        "seconds": round(seconds, 1),
        "calls_per_s": round(args.calls / seconds, 1),
        "rss_start_mb": samples[0]["rss_mb"],
        "rss_after_warmup_mb": warm["rss_mb"],
        "warmup_calls": warm["calls"],
        "rss_end_mb": end["rss_mb"],
        "rss_end_after_gc_mb": round(after_gc, 2),
        "growth_pct": round(growth, 2),
        "target_growth_pct": 5.0,
        "meets_target": growth <= 5.0,
        "ledger_rows": rows,
        "usage_db_mb": round(sum(p.stat().st_size for p in home.glob("usage.db*")) / 2**20, 2),
        "samples": samples,
    }


def plot(result: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed in this environment: no plot")
        return False
    xs = [s["calls"] for s in result["samples"]]
    ys = [s["rss_mb"] for s in result["samples"]]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(xs, ys, marker="o", markersize=3)
    base = result["rss_after_warmup_mb"]
    ax.axhline(base * 1.05, color="grey", linestyle="--", linewidth=1, label="warm-up RSS + 5 %")
    ax.axvline(result["warmup_calls"], color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("streamed calls")
    ax.set_ylabel("RSS (MiB)")
    ax.set_ylim(0, max(ys) * 1.15)
    ax.set_title(
        f"Hanlin Gateway RSS, {result['calls']:,} streamed calls at concurrency "
        f"{result['concurrency']} (growth {result['growth_pct']:+.1f} %)",
        fontsize=9,
    )
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--every", type=int, default=5_000, help="sample RSS every this many calls")
    ap.add_argument("--warmup", type=int, default=10_000, help="growth is measured from here")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--plot", action="store_true", help="write bench/out/gateway_memory.png")
    ap.add_argument("--out", type=Path, default=HERE / "out" / "gateway_memory.json")
    args = ap.parse_args()

    guard_loopback()
    uptime_before = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    with temp_home() as home, Upstream(args.port) as upstream:
        result = asyncio.run(run(args, upstream, home))
    uptime_after = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    report = {
        "benchmark": "gateway_memory",
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "versions": versions(),
        "uptime_before": uptime_before,
        "uptime_after": uptime_after,
        "blocked_non_loopback": BLOCKED,
        **result,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    if args.plot:
        png = args.out.with_suffix(".png")
        if plot(result, png):
            print(f"wrote {png}")

    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"Gateway memory: {args.calls:,} streamed calls, concurrency {args.concurrency}"
    )
    for col in ("RSS start", "after warm-up", "end", "end (after gc)", "growth", "target",
                "calls/s", "errors", "ledger rows", "usage.db"):  # fmt: skip
        table.add_column(col, justify="right")
    table.add_row(
        f"{result['rss_start_mb']:.1f} MiB",
        f"{result['rss_after_warmup_mb']:.1f} MiB ({result['warmup_calls']:,})",
        f"{result['rss_end_mb']:.1f} MiB",
        f"{result['rss_end_after_gc_mb']:.1f} MiB",
        f"{result['growth_pct']:+.2f} %",
        "met (≤ 5 %)" if result["meets_target"] else "MISSED (> 5 %)",
        f"{result['calls_per_s']:.0f}",
        str(result["errors"]),
        f"{result['ledger_rows']:,}",
        f"{result['usage_db_mb']:.1f} MiB",
    )
    Console(width=max(Console().width, 150)).print(table)
    print(f"load: before [{uptime_before}]  after [{uptime_after}]")
    if BLOCKED:
        print(f"blocked {len(BLOCKED)} non-loopback attempts: {sorted(set(BLOCKED))[:5]}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
