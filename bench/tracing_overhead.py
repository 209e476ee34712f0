"""What tracing costs: per span, per traced gateway call and per ``kb:`` answer, tracing on vs
off in the same run, and the writer's sustained rate with the process's RSS.

    .venv/bin/python bench/tracing_overhead.py [--spans 200000] [--out bench/out]
    # the writer on a store that already holds 1M spans (bench/trace_store.py leaves it)
    .venv/bin/python bench/tracing_overhead.py --only sustained --spans 150000 \
        --traces-db bench/.cache/trace_store/traces.sqlite --retention-days 0

- **span**: ``hanlin.tracing.spans.span`` around nothing, with GenAI attributes and a recorded
  message (create + attributes + end + hand-off to the writer's queue): p50/p99 over 20,000;
  the store write happens on the writer thread and is measured separately:
- **sustained**: ``--spans`` spans (5 per trace, realistic attributes) made at ``--rate``
  spans/s by one thread of the same process (the writer shares its GIL), then the time until
  the writer has stored them all → spans/s stored, spans dropped (must be 0), and RSS
  before/after (the queue is bounded, so RSS stays flat). ``--traces-db`` starts from a copy
  of that trace store (opening it applies any pending migration, timed apart);
- **gateway call**: ``Gateway.chat`` to the fake upstream (:mod:`hanlin.testing.upstream`, a
  separate process on 127.0.0.1), 400 calls per arm, arms interleaved in blocks of 50;
- **kb: answer**: ``RagEngine.ask`` on a small knowledge base (extractive: no model), 200 per arm,
  interleaved the same way.

Targets (issue 17): ≤ 0.1 ms per span p50, ≤ 2 % added latency on a ``kb:`` answer, ≥ 5,000
spans/s sustained with RSS flat. Results: <out>/tracing_overhead.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pct(xs: list[float], p: float) -> float:
    return round(float(np.percentile(np.asarray(xs) * 1000, p)), 4)


def settings_for(home: Path, upstream: str, enabled: bool, retention_days: int = 30) -> Any:
    from hanlin.config import load_settings

    return load_settings(
        home=home,
        models={"endpoints": {"fake": {"base_url": upstream}}, "retries": 0},
        tracing={"enabled": enabled, "retention_days": retention_days},
    )


def span_cost(n: int) -> dict[str, float]:
    from hanlin.tracing import spans

    msgs = [{"role": "user", "content": "What is hybrid search? " * 8}]
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        with spans.span(
            "chat fake/m", operation="chat", attrs={"gen_ai.request.model": "fake/m"}
        ) as sp:
            spans.record(sp, "gen_ai.input.messages", msgs)
            sp.set_attribute("gen_ai.usage.input_tokens", 40)
        times.append(time.perf_counter() - t0)
    return {"p50 ms": pct(times, 50), "p99 ms": pct(times, 99)}


def sustained(n: int, rate: int) -> dict[str, Any]:
    """``n`` spans made at ``rate`` spans/s (traces of 5), then until all are stored."""
    from hanlin.tracing import setup, spans

    before = rss_mb()
    t0 = time.perf_counter()
    for i in range(n // 5):
        with spans.span("answer docs", operation="rag", kb="docs") as root:
            spans.record(root, "hanlin.question", f"question number {i} about tea")
            for step in ("search docs", "pack", "generate", "chat fake/m"):
                with spans.span(step, attrs={"gen_ai.request.model": "fake/m"}) as sp:
                    sp.set_attribute("gen_ai.usage.input_tokens", 120)
        ahead = t0 + (i + 1) * 5 / rate - time.perf_counter()
        if ahead > 0:
            time.sleep(ahead)
    made = time.perf_counter() - t0
    setup.flush(600)
    total = time.perf_counter() - t0
    (c,) = setup.counters().values()
    return {
        "spans": n,
        "offered spans/s": rate,
        "made in s": round(made, 1),
        "stored in s": round(total, 1),
        "spans/s stored": round(c.written / total),
        "dropped": c.dropped,
        "failed": c.failed,
        "RSS MB before": round(before),
        "RSS MB after": round(rss_mb()),
    }


def interleaved(run: Any, make: Any, calls: int, block: int = 50) -> dict[str, Any]:
    """``run(arm)`` once per call; arms alternate in blocks; ``make(arm)`` switches."""
    times: dict[bool, list[float]] = {True: [], False: []}
    for arm in (False, True):
        make(arm)
        for _ in range(10):
            run()
    for b in range(2 * calls // block):
        arm = b % 2 == 1
        make(arm)
        for _ in range(block):
            t0 = time.perf_counter()
            run()
            times[arm].append(time.perf_counter() - t0)
    off, on = statistics.median(times[False]), statistics.median(times[True])
    return {
        "off p50 ms": pct(times[False], 50),
        "on p50 ms": pct(times[True], 50),
        "off p95 ms": pct(times[False], 95),
        "on p95 ms": pct(times[True], 95),
        "added p50 ms": round((on - off) * 1000, 3),
        "added %": round((on - off) / off * 100, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spans", type=int, default=200_000)
    ap.add_argument("--rate", type=int, default=5_000, help="spans/s offered in the sustained run")
    ap.add_argument("--out", type=Path, default=HERE / "out")
    ap.add_argument("--traces-db", type=Path, help="start from a copy of this traces.sqlite")
    ap.add_argument("--only", choices=["sustained"], help="run only this part")
    ap.add_argument(
        "--retention-days",
        type=int,
        default=30,
        help="tracing.retention_days (bench/trace_store.py's spans are dated December 2025: "
        "30 makes the writer delete all of them while it writes; 0 keeps them)",
    )
    args = ap.parse_args()
    from hanlin.knowledge.kb import KnowledgeBase
    from hanlin.models.gateway import Gateway
    from hanlin.rag.engine import RagEngine
    from hanlin.tracing import setup

    home = Path(tempfile.mkdtemp(prefix="hanlin-trace-bench-"))
    os.environ["HANLIN_HOME"] = str(home)
    port = 8931
    up = subprocess.Popen(
        [sys.executable, "-m", "hanlin.testing.upstream", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(2.0)
        url = f"http://127.0.0.1:{port}/v1"
        on = settings_for(home, url, True, args.retention_days)
        off = settings_for(home, url, False, args.retention_days)
        result: dict[str, Any] = {"machine": os.uname().nodename, "cpus": os.cpu_count()}
        if args.traces_db is not None:
            result["store"] = prefill(home, args.traces_db)
        setup.configure(on)
        result["span"] = span_cost(20_000)
        setup.flush(120)
        result["sustained"] = sustained(args.spans, args.rate)
        print(result, flush=True)
        if args.only == "sustained":
            report(args.out, result, ("store", "span", "sustained"))
            return

        gw = Gateway(on)
        result["gateway call"] = interleaved(
            lambda: gw.chat("hi", "fake/m"), lambda arm: setup.configure(on if arm else off), 400
        )
        print(result["gateway call"], flush=True)
        src = home / "docs"
        src.mkdir()
        for i in range(20):
            (src / f"d{i}.md").write_text(
                f"# Tea {i}\n\nOolong tea number {i} is grown in Fujian and Taiwan. "
                "It is partly oxidised.\n",
                "utf-8",
            )
        kb = KnowledgeBase.create("docs", settings=on)
        kb.add(src)
        engine = RagEngine(kb, gateway=gw)
        result["kb: answer"] = interleaved(
            lambda: engine.ask("Where is oolong tea grown?", mode="extractive"),
            lambda arm: setup.configure(on if arm else off),
            200,
        )
        print(result["kb: answer"], flush=True)
        gw.close()
    finally:
        up.terminate()
    report(args.out, result, ("span", "sustained", "gateway call", "kb: answer"))


def prefill(home: Path, source: Path) -> dict[str, Any]:
    """Copy a trace store into ``home`` and open it once (migrations included, timed)."""
    import shutil

    from hanlin.tracing.sqlite import FILENAME, SqliteTraceStore

    shutil.copy(source, home / FILENAME)
    store = SqliteTraceStore(home / FILENAME)
    t0 = time.perf_counter()
    spans = store.count()
    opened = time.perf_counter() - t0
    store.close()
    return {"spans stored before": spans, "first open s (migrations)": round(opened, 1)}


def report(out: Path, result: dict[str, Any], sections: tuple[str, ...]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "tracing_overhead.json").write_text(json.dumps(result, indent=1))
    lines = ["| what | value |", "|---|---|"]
    for section in sections:
        for k, v in result[section].items():
            lines.append(f"| {section}: {k} | {v} |")
    (out / "tracing_overhead.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
