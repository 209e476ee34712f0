"""What the multi-process benchmarks share: `hanlin` processes with their own HANLIN_HOME (and
optionally the shared database), a server waited for until healthy, stopping them all, and
writing a result table as JSON + Markdown."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(home: Path, url: str | None, *args: str) -> subprocess.Popen[bytes]:
    """``python -m hanlin ARGS`` in ``home``; ``url``: the shared database (None: embedded)."""
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HANLIN_HOME": str(home)}
    env.pop("HANLIN_DATABASE_URL", None)
    if url:
        env["HANLIN_DATABASE_URL"] = url
    log = (home / f"{args[0]}-{time.monotonic_ns()}.log").open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "hanlin", *args], env=env, stdout=log, stderr=subprocess.STDOUT
    )


def serve(home: Path, url: str | None) -> tuple[subprocess.Popen[bytes], str]:
    """A `hanlin serve` on a free loopback port, once it answers; its process and base URL."""
    port = free_port()
    proc = start(home, url, "serve", "--port", str(port))
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            httpx.get(base + "/api/health", timeout=2)
            return proc, base
        except httpx.HTTPError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"the server did not start (logs in {home})") from None
            time.sleep(0.3)


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()


def write_table(out: Path, name: str, rows: list[dict[str, Any]]) -> None:
    """``<out>/<name>.json`` and ``.md`` (one row per dict), and the table on stdout."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(rows, indent=2))
    keys = list(rows[0])
    md = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    md += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    (out / f"{name}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
