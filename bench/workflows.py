"""Issue 18's workflow measurements, Hanlin's engine (``hanlin.flows``) side by side with
LangGraph and its SQLite checkpointer, in one run on one machine.

    .bench-venv/bin/python bench/workflows.py [--out bench/out] [--runs 400]
    .bench-venv/bin/python bench/workflows.py --parts overhead,bytes --runs 50     # quick
    .bench-venv/bin/python bench/workflows.py --parts overhead --graphs rag       # small graph
    .bench-venv/bin/python bench/workflows.py --parts overhead --synchronous normal

LangGraph never becomes a Hanlin dependency: it lives in the bench environment, which has
Hanlin installed editable beside it (see bench/README.md)::

    python3 -m venv .bench-venv
    .bench-venv/bin/pip install -e . 'langgraph==1.2.*' 'langgraph-checkpoint-sqlite==3.1.*' \
        matplotlib psutil

Without LangGraph (e.g. in ``.venv``) the script says so, prints that command, and measures
Hanlin alone.

Both frameworks checkpoint durably to SQLite in the same temporary directory: Hanlin's run store
(WAL, ``synchronous=FULL``, a transaction per node — quick nodes without effects ride in the
next one, see docs/workflows.md) and LangGraph's ``AsyncSqliteSaver`` (WAL, SQLite's default
``synchronous=FULL``) with ``durability="sync"`` — each step's checkpoint is written before the
next step starts, the guarantee Hanlin gives. ``--synchronous normal`` sets
``synchronous=NORMAL`` on both sides for the overhead part (Hanlin:
``workflows.sqlite_synchronous``): a commit survives the process being killed, not a power cut.
LangGraph's default ``durability="async"`` (the checkpoint written while the next step runs) is
measured as a second LangGraph arm. Each framework is measured through both of its APIs: async
(``FlowEngine.start`` + ``astream``; ``ainvoke`` with ``AsyncSqliteSaver`` and ``async def``
nodes) and sync (``FlowEngine.run``; ``invoke`` with ``SqliteSaver`` and plain nodes), each
against a direct floor of the same API.

1. **overhead**: two graphs, run one at a time, the arms interleaved in blocks of 10 runs:

   - ``pass20``: 20 pass-through nodes (Hanlin: ``variable_assigner`` ``x: "{{prev.x}}"``, plus
     its ``start`` and ``end`` nodes — 22 checkpointed steps; LangGraph: 20 ``async def`` nodes
     returning ``{"x": state["x"]}``);
   - ``rag``: retrieve → llm → if → tool. Both sides do the same work with the same objects:
     a keyword search (k 3) of a small knowledge base (``KnowledgeBase.search``; async: on a
     worker thread), one chat call to the fake upstream (:mod:`hanlin.testing.upstream`, a
     separate process on 127.0.0.1) through one shared Gateway (``achat``; sync: ``chat``), a
     branch on the hit count, and the ``calculator`` tool (built once by the LangGraph and
     direct arms; Hanlin's tool node builds it on every execution). Hanlin: start, a
     ``knowledge_retrieval``, ``llm`` (``stream: false``), ``if_else``, ``tool`` and ``end``
     node (prompts are templates); LangGraph: three nodes and a conditional edge (its way to
     branch).

   A third arm, ``direct``, calls the same work functions in sequence with no engine and no
   checkpoint: the floor. Overhead = arm − direct (p50 and p95 of the run's wall time), per
   node = per run / 20 (``pass20``) or / 4 (``rag``); client CPU per run (``process_time``, all
   threads) beside it. Target: Hanlin's overhead ≥ 3× lower than LangGraph's.
2. **bytes**: 20 runs of a 20-node graph in a fresh database per framework, the state constant
   (each node passes on one ``--payload``-byte string) or growing (each node appends one such
   string to a list: LangGraph a reducer channel; Hanlin each node's output, its ``end`` node
   returning the list). Stored bytes per run and per node from ``dbstat`` (payload of each
   table and its indexes) before vs after, the WAL bytes written (autocheckpoint off) and the
   write transactions (commit frames in the WAL: one fsync each).
3. **concurrent**: ``--concurrent`` runs (default 1,000) of start → human approval → end, in a
   fresh subprocess per framework, ``--concurrency`` in flight (asyncio): start them all (each
   pauses), then answer them all; runs/s per phase, peak RSS over the baseline, and every run
   checked (done, right outputs). LangGraph: ``interrupt()`` in a node, resumed with
   ``Command(resume=…)``.
4. **crash** (Hanlin): ``--kills`` runs of a workflow with 7 HTTP side effects (one, an
   iteration of five, one) against a local server that counts requests per Idempotency-Key
   (``workflows.allowed_hosts``), each driven by ``hanlin workflow resume`` in a subprocess that
   is SIGKILLed at a random moment after it claimed the run, then resumed to the end.
   Duplicated requests are split into *in flight* (no recorded result at the kill: the engine's
   documented limit, same Idempotency-Key) and *repeated after being recorded* (a bug: must be 0).

Results: ``<out>/workflows.json``, ``workflows.md`` and ``workflows.png`` (matplotlib).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from workflow_graphs import HERE, INSTALL, free_port, have_langgraph, loadavg, log, versions
from workflow_overhead import checkpoint_bytes, overhead, profile_hanlin
from workflow_runs import concurrent, concurrent_hanlin, concurrent_langgraph, crash

# --- report --------------------------------------------------------------------------------


def table_head(*names: str) -> list[str]:
    return ["| " + " | ".join(names) + " |", "|---" * len(names) + "|"]


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"Machine: {result['machine']}; load {result['load before']} → {result['load after']}",
        "",
    ]
    lines += [f"Versions: {', '.join(f'{k} {v}' for k, v in result['versions'].items())}", ""]
    ov = result.get("overhead")
    if ov:
        lines += table_head(
            "graph", "arm", "p50 ms/run", "p95 ms/run", "CPU ms/run", "overhead p50 ms/run",
            "overhead p95 ms/run", "overhead p50 ms/node", "overhead CPU ms/run",
        )  # fmt: skip
        for graph in ("pass20", "rag"):
            if graph not in ov:
                continue
            for arm, m in ov[graph]["arms"].items():
                o = ov[graph]["overhead"].get(arm, {})
                lines.append(
                    f"| {graph} | {arm} | {m['p50 ms']} | {m['p95 ms']} | {m['cpu ms/run']} | "
                    f"{o.get('overhead p50 ms/run', '—')} | {o.get('overhead p95 ms/run', '—')} | "
                    f"{o.get('overhead p50 ms/node', '—')} | {o.get('overhead cpu ms/run', '—')} |"
                )
        lines.append("")
        for graph in ("pass20", "rag"):
            commits = ov.get(graph, {}).get("commits/run")
            if commits:
                shown = ", ".join(f"{k} {v}" for k, v in commits.items())
                lines.append(f"- {graph}, write transactions (fsyncs) per run: {shown}")
            for key, ratio in ov.get(graph, {}).get("overhead", {}).items():
                if key.startswith("ratio"):
                    shown = ", ".join(
                        f"{k.removeprefix('overhead ')} {v}" for k, v in ratio.items()
                    )
                    lines.append(f"- {graph}, {key}: {shown}")
        lines.append("")
    by = result.get("bytes")
    if by:
        lines += [
            f"Checkpoint bytes ({by['runs']} runs × {by['nodes']} nodes, "
            f"payload {by['payload bytes']} B):",
            "",
        ]
        lines += table_head(
            "framework, state", "stored bytes/run", "stored bytes/node", "WAL bytes written/node",
            "commits/run", "by table (bytes/run)",
        )  # fmt: skip
        for key, m in by.items():
            if isinstance(m, dict):
                tables = ", ".join(f"{k} {v}" for k, v in m["by table (bytes/run)"].items())
                lines.append(
                    f"| {key} | {m['stored bytes/run']} | {m['stored bytes/node']} | "
                    f"{m['WAL bytes written/node']} | {m['commits/run']} | {tables} |"
                )
        lines.append("")
    cc = result.get("concurrent")
    if cc:
        keys = [
            "start→paused runs/s",
            "answer→done runs/s",
            "whole runs/s",
            "done with the right outputs",
            "lost",
            "RSS MB before",
            "peak RSS MB",
            "RSS growth KB/run",
        ]
        lines += ["| framework | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
        for fw, m in cc.items():
            lines.append(f"| {fw} | " + " | ".join(str(m[k]) for k in keys) + " |")
        lines.append("")
    cr = result.get("crash")
    if cr:
        lines += ["| crash-resume | value |", "|---|---|"]
        for k, v in cr.items():
            if k != "trials":
                lines.append(f"| {k} | {v} |")
        lines.append("")
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    panels = [p for p in ("overhead", "bytes", "concurrent") if result.get(p)]
    if not panels:
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.2))
    axes = [axes] if len(panels) == 1 else list(axes)
    colours = {
        "hanlin": "#2a6f97",
        "langgraph": "#c8553d",
        "langgraph (durability=async)": "#f4a259",
        "hanlin (sync)": "#61a5c2",
        "langgraph (sync)": "#e07a5f",
    }
    for ax, panel in zip(axes, panels, strict=True):
        if panel == "overhead":
            ov = result["overhead"]
            graphs = [g for g in ("pass20", "rag") if g in ov]
            arms = [a for a in colours if any(a in ov[g]["overhead"] for g in graphs)]
            width = 0.8 / len(arms)
            for j, arm in enumerate(arms):
                vals = [
                    ov[g]["overhead"].get(arm, {}).get("overhead p50 ms/run", 0) for g in graphs
                ]
                xs = [i + j * width for i in range(len(graphs))]
                ax.bar(xs, vals, width, label=arm, color=colours[arm])
            ax.set_xticks([i + width * (len(arms) - 1) / 2 for i in range(len(graphs))], graphs)
            ax.set_ylabel("engine overhead per run, p50 (ms)")
            ax.tick_params(axis="x", labelsize=9)
            ax.set_title("overhead over direct calls")
            ax.legend(fontsize=8)
        elif panel == "bytes":
            by = result["bytes"]
            kinds = ["constant", "growing"]
            fws = [f for f in ("hanlin", "langgraph") if f"{f} constant" in by]
            width = 0.8 / len(fws)
            for j, fw in enumerate(fws):
                vals = [by[f"{fw} {k}"]["stored bytes/node"] / 1024 for k in kinds]
                ax.bar([i + j * width for i in range(2)], vals, width, label=fw, color=colours[fw])
            ax.set_xticks(
                [i + width * (len(fws) - 1) / 2 for i in range(2)], [f"{k} state" for k in kinds]
            )
            ax.set_ylabel("stored KiB per node step")
            ax.set_title(f"checkpoint bytes (payload {by['payload bytes']} B)")
            ax.legend(fontsize=8)
        else:
            cc = result["concurrent"]
            fws = list(cc)
            ax.bar(fws, [cc[f]["whole runs/s"] for f in fws], color=[colours[f] for f in fws])
            ax.set_ylabel("runs/s (start, pause, answer, finish)")
            n = next(iter(cc.values()))["runs"]
            ax.set_title(f"{n} concurrent paused runs")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


# --- main ----------------------------------------------------------------------------------


def worker(args: argparse.Namespace) -> None:
    home = Path(args.dir)
    if args.worker == "hanlin":
        found = asyncio.run(concurrent_hanlin(home, args.concurrent, args.concurrency))
    else:
        found = asyncio.run(concurrent_langgraph(home, args.concurrent, args.concurrency))
    print("RESULT " + json.dumps(found), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=HERE / "out")
    ap.add_argument("--runs", type=int, default=400, help="runs per arm and graph (overhead)")
    ap.add_argument("--parts", default="overhead,bytes,concurrent,crash")
    ap.add_argument(
        "--graphs", default="pass20,rag", help="overhead: pass20 (20 nodes), rag (small graph)"
    )
    ap.add_argument(
        "--synchronous",
        choices=["full", "normal"],
        default="full",
        help="overhead: SQLite synchronous on both sides (Hanlin: workflows.sqlite_synchronous)",
    )
    ap.add_argument("--payload", type=int, default=1024, help="bytes per state item (bytes)")
    ap.add_argument("--bytes-runs", type=int, default=20)
    ap.add_argument("--concurrent", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--delay", type=float, default=0.1, help="the counting server's delay (s)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--no-langgraph", action="store_true", help="measure Hanlin alone")
    ap.add_argument("--profile", action="store_true", help="cProfile Hanlin's pass20 runs")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--worker", choices=["hanlin", "langgraph"], help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    use_lg = not args.no_langgraph and have_langgraph()
    if not use_lg and not args.no_langgraph:
        print(
            "LangGraph is not installed in this environment: measuring Hanlin alone. For the "
            f"side-by-side run:\n    {INSTALL}\n    .bench-venv/bin/python bench/workflows.py",
            file=sys.stderr,
            flush=True,
        )
    parts = set(args.parts.split(","))
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    tmp = Path(tempfile.mkdtemp(prefix="hanlin-wf-bench-"))
    os.environ["HANLIN_HOME"] = str(tmp / "home")
    result: dict[str, Any] = {
        "machine": f"{os.uname().nodename}, {os.cpu_count()} CPUs",
        "versions": versions(),
        "load before": loadavg(),
        "temp dir": str(tmp) if args.keep else None,
        "args": {k: v for k, v in vars(args).items() if k not in ("worker", "dir", "out", "keep")},
    }
    t_start = time.perf_counter()
    up = None
    try:
        if "overhead" in parts:
            port = free_port()
            up = subprocess.Popen(
                [sys.executable, "-m", "hanlin.testing.upstream", "--port", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.1)
            home = tmp / "overhead"
            home.mkdir()
            result["overhead"] = asyncio.run(
                overhead(
                    home,
                    f"http://127.0.0.1:{port}/v1",
                    args.runs,
                    use_lg,
                    tuple(args.graphs.split(",")),
                    args.synchronous,
                )
            )
            if args.profile:
                (tmp / "profile").mkdir()
                args.out.mkdir(parents=True, exist_ok=True)
                lines = profile_hanlin(tmp / "profile", 30, args.out / "workflows_profile.txt")
                print("\n".join(lines[:45]))
        if "bytes" in parts:
            home = tmp / "bytes"
            home.mkdir()
            result["bytes"] = asyncio.run(
                checkpoint_bytes(home, args.bytes_runs, args.payload, use_lg)
            )
        if "concurrent" in parts:
            result["concurrent"] = {}
            for fw in ["hanlin"] + (["langgraph"] if use_lg else []):
                log(f"concurrent: {fw}, {args.concurrent} runs, {args.concurrency} in flight …")
                result["concurrent"][fw] = concurrent(tmp, fw, args.concurrent, args.concurrency)
                log(f"concurrent {fw}", json.dumps(result["concurrent"][fw]))
        if "crash" in parts:
            home = tmp / "crash"
            home.mkdir()
            result["crash"] = crash(home, args.kills, args.delay, seed)
            log("crash", json.dumps({k: v for k, v in result["crash"].items() if k != "trials"}))
    finally:
        if up is not None:
            up.terminate()
            up.wait()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    result["load after"] = loadavg()
    result["wall s"] = round(time.perf_counter() - t_start, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "workflows.json").write_text(json.dumps(result, indent=1, ensure_ascii=False))
    md = markdown(result)
    (args.out / "workflows.md").write_text(md + "\n")
    if plot(result, args.out / "workflows.png"):
        log(f"plot: {args.out / 'workflows.png'}")
    print(md)
    log(f"done in {result['wall s']} s; results in {args.out}/workflows.json")


if __name__ == "__main__":
    main()
