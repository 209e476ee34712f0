"""Parser bombs through the real server: server RSS before/after 100 bomb uploads (target: flat
within 5 %), and the time they take.

    .venv/bin/python bench/parser_bombs.py --out bench/out
    .venv/bin/python bench/parser_bombs.py --parse-workers 0   # parsing in the server process

Starts ``python -m hanlin serve`` on 127.0.0.1 over a temporary ``HANLIN_HOME``, creates a
knowledge base, warms the server up with a few good files, then uploads ``--bombs`` crafted files
(``hanlin.testing.bombs``: PDF stream bombs, .docx archives of many small parts, .docx parts that
lie about their size, JSON nested past the recursion limit, PDFs that keep the parser spinning) in
batches through ``/api/kb/<name>/files`` and waits for each job; one good file is uploaded with
the warm-up and one after the bombs (it must be ingested). The server's VmRSS is read from /proc
after the warm-up and after every batch; good files are kept out of the measured batches, since
ingesting them legitimately grows the knowledge base's caches. Settings are the
defaults except ``knowledge.parse_timeout_s`` (``--timeout-s``, so spinning files cost seconds,
not the default five minutes). Results: ``<out>/parser_bombs.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from hanlin.testing import bombs

HERE = Path(__file__).resolve().parent
MiB = 1 << 20

#: (file name, content) makers, cycled through for the bombs
KINDS: list[tuple[str, str, Callable[[], bytes]]] = [
    ("pdf-stream", "stream-bomb.pdf", lambda: bombs.pdf_bomb(2 << 30)),
    ("docx-parts", "parts-bomb.docx", lambda: bombs.docx_many_members()),
    ("docx-parts-under-total", "split-bomb.docx", lambda: bombs.docx_many_members(members=150)),
    ("docx-lying-part", "liar.docx", lambda: bombs.docx_lying_member()),
    ("json-nesting", "deep.json", lambda: bombs.json_nesting()),
    ("pdf-spin", "spin.pdf", lambda: bombs.pdf_spin()),
]
GOOD = ("good.pdf", bombs.pdf_text("Glaciers carve valleys into the shape of the letter U."))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def children_rss_mb(pid: int) -> float:
    """RSS of the server's child processes (parse and embedding workers)."""
    total = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            with contextlib.suppress(OSError, RuntimeError):  # it exited meanwhile
                total += rss_mb(int(child))
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_job(client: httpx.Client, job: str, timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = client.get(f"/api/kb/bombs/jobs/{job}").json()
        if body["status"] != "running":
            return body
        if time.monotonic() > deadline:
            raise RuntimeError(f"job still running after {timeout} s")
        time.sleep(0.1)


def upload(client: httpx.Client, files: list[tuple[str, bytes]]) -> dict[str, Any]:
    resp = client.post("/api/kb/bombs/files", files=[("files", f) for f in files])
    resp.raise_for_status()
    return wait_job(client, resp.json()["job"])


def run(args: argparse.Namespace, home: Path) -> dict[str, Any]:
    (home / "hanlin.toml").write_text(
        f"[knowledge]\nparse_timeout_s = {args.timeout_s}\nparse_workers = {args.parse_workers}\n",
        "utf-8",
    )
    print("crafting bombs ...", flush=True)
    made = [(kind, name, make()) for kind, name, make in KINDS]
    port = free_port()
    env = {**os.environ, "HANLIN_HOME": str(home)}
    cmd = [sys.executable, "-m", "hanlin", "serve", "--port", str(port)]
    server = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL)
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600, trust_env=False)
        deadline = time.monotonic() + 90
        while True:
            try:
                if client.get("/api/health").is_success:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.2)
        client.post("/api/kb", json={"name": "bombs"}).raise_for_status()
        for _ in range(2):  # warm-up: imports, the embedding model, caches, a parse worker
            upload(client, [("warm.md", b"# Warm\n\nRivers carry sediment.\n"), GOOD])
        upload(client, [(name, data) for _, name, data in made])  # each kind once, not counted
        rss_before = rss_mb(server.pid)
        samples = [{"bombs": 0, "rss_mb": round(rss_before, 1), "s": 0.0}]
        outcomes: Counter[str] = Counter()
        reasons: dict[str, str] = {}
        sent = 0
        t0 = time.perf_counter()
        while sent < args.bombs:
            batch = [
                made[(sent + i) % len(made)] for i in range(min(args.batch, args.bombs - sent))
            ]
            files = [(f"{i}-{name}", data) for i, (_, name, data) in enumerate(batch)]
            job = upload(client, files)
            by_name = {f["filename"]: f for f in job["files"]}
            for i, (kind, name, _) in enumerate(batch):
                f = by_name[f"{i}-{name}"]
                outcomes[f"{kind}:{f['status']}"] += 1
                reasons.setdefault(kind, f.get("reason") or "")
            sent += len(batch)
            samples.append(
                {
                    "bombs": sent,
                    "rss_mb": round(rss_mb(server.pid), 1),
                    "s": round(time.perf_counter() - t0, 1),
                }
            )
            print(f"{sent:4d} bombs  server RSS {samples[-1]['rss_mb']:.1f} MB", flush=True)
        seconds = time.perf_counter() - t0
        rss_after = rss_mb(server.pid)
        workers_rss = children_rss_mb(server.pid)
        after_bombs = upload(client, [GOOD])  # the server still ingests good files
        good_failed = sum(f["status"] != "done" for f in after_bombs["files"])
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
    return {
        "bombs": args.bombs,
        "batch": args.batch,
        "bytes_per_kind": {kind: len(data) for kind, _, data in made},
        "settings": {"parse_timeout_s": args.timeout_s, "parse_workers": args.parse_workers},
        "server_rss_before_mb": round(rss_before, 1),
        "server_rss_after_mb": round(rss_after, 1),
        "growth_pct": round(100 * (rss_after - rss_before) / rss_before, 2),
        "workers_rss_after_mb": round(workers_rss, 1),
        "seconds": round(seconds, 1),
        "good_files_failed": good_failed,
        "outcomes": dict(sorted(outcomes.items())),
        "reasons": reasons,
        "samples": samples,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument("--bombs", type=int, default=100)
    parser.add_argument("--batch", type=int, default=10, help="bombs per upload (one job)")
    parser.add_argument("--timeout-s", type=float, default=5.0, help="knowledge.parse_timeout_s")
    parser.add_argument("--parse-workers", type=int, default=1, help="0: parse in the server")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hanlin-bombs-") as home:
        result = run(args, Path(home))
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.parse_workers else "_inprocess"
    out = args.out / f"parser_bombs{suffix}.json"
    out.write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    print(
        f"server RSS {result['server_rss_before_mb']} → {result['server_rss_after_mb']} MB "
        f"({result['growth_pct']:+.2f} %), {result['seconds']} s for {args.bombs} bombs; "
        f"good files failed: {result['good_files_failed']}; {out}"
    )


if __name__ == "__main__":
    main()
