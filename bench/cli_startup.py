"""CLI startup: whole ``hanlin`` processes, timed like hyperfine, optionally side by side with
another checkout of the code.

Each command runs as a fresh ``python -m hanlin …`` process with ``PYTHONPATH`` pointing at the
``src`` folder under test, in its own temporary ``HANLIN_HOME`` holding a knowledge base
``sample`` built from ``samples/`` by that same code (so ``kb sync sample`` has nothing to do).
Runs of the variants alternate, so a busy machine slows them alike. Reported per command and
variant: median and minimum wall time, and median CPU time (user + system of the process and
its children), which a loaded machine inflates far less than wall time.

    git worktree add /tmp/cli-before HEAD      # before changing anything
    .venv/bin/python bench/cli_startup.py --before /tmp/cli-before/src --out bench/out/cli_startup
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
KB = "sample"
COMMANDS: dict[str, list[str]] = {
    "--help": ["--help"],
    "version": ["version"],
    "kb sync (nothing changed)": ["kb", "sync", KB],
    "kb search": ["kb", "search", KB, "混合检索", "--mode", "keyword"],
}


def _env(src: Path, home: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(src), "HANLIN_HOME": str(home), "COLUMNS": "100"}


def _run(src: Path, home: Path, args: list[str]) -> tuple[float, float]:
    """One whole process: (wall seconds, CPU seconds). Raises if the command fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "hanlin", *args],
        env=_env(src, home),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(
            f"`hanlin {' '.join(args)}` with {src} failed ({proc.returncode}):\n"
            + proc.stderr.decode(errors="replace")[-2000:]
        )
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _prepare(src: Path, home: Path, samples: Path) -> None:
    """A knowledge base of the sample files, built by the code under test."""
    _run(src, home, ["kb", "create", KB])
    _run(src, home, ["kb", "add", KB, str(samples)])


def _summary(walls: list[float], cpus: list[float]) -> dict[str, Any]:
    return {
        "runs": len(walls),
        "wall_median_s": round(statistics.median(walls), 4),
        "wall_min_s": round(min(walls), 4),
        "cpu_median_s": round(statistics.median(cpus), 4),
        "wall_s": [round(w, 4) for w in walls],
        "cpu_s": [round(c, 4) for c in cpus],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--after", type=Path, default=ROOT / "src", help="src folder to time")
    parser.add_argument("--before", type=Path, help="src folder of the code to compare with")
    parser.add_argument("--runs", type=int, default=10, help="timed runs per command and variant")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs first (page cache)")
    parser.add_argument("--samples", type=Path, default=ROOT / "samples")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "cli_startup")
    args = parser.parse_args()

    variants = {"after": args.after.resolve()}
    if args.before:
        variants = {"before": args.before.resolve(), **variants}
    results: dict[str, dict[str, Any]] = {cmd: {} for cmd in COMMANDS}
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="hanlin-cli-startup-") as tmp:
        homes = {name: Path(tmp) / name for name in variants}
        for name, src in variants.items():
            _prepare(src, homes[name], args.samples)
        for cmd, cmd_args in COMMANDS.items():
            walls: dict[str, list[float]] = {name: [] for name in variants}
            cpus: dict[str, list[float]] = {name: [] for name in variants}
            for i in range(args.warmup + args.runs):
                for name, src in variants.items():  # alternate: both see the same load
                    wall, cpu = _run(src, homes[name], cmd_args)
                    if i >= args.warmup:
                        walls[name].append(wall)
                        cpus[name].append(cpu)
            for name in variants:
                results[cmd][name] = _summary(walls[name], cpus[name])
            line = "  ".join(
                f"{name} {results[cmd][name]['wall_median_s']:.3f} s "
                f"(min {results[cmd][name]['wall_min_s']:.3f}, "
                f"cpu {results[cmd][name]['cpu_median_s']:.3f})"
                for name in variants
            )
            print(f"{cmd:28} {line}", flush=True)

    report = {
        "commands": {cmd: ["hanlin", *a] for cmd, a in COMMANDS.items()},
        "variants": {name: str(src) for name, src in variants.items()},
        "results": results,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "loadavg_start": [round(x, 2) for x in load_start],
            "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "cli_startup.json"
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
