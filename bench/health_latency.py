"""Health-route latency while big requests are in flight.

Starts ``hanlin serve`` on 127.0.0.1 (a temp HANLIN_HOME), then times ``GET /api/health``
(p50/p99/max) idle, while N senders post maximal JSON bodies (just under ``server.max_json_mb``)
again and again, and while N senders post 64 MB bodies that must be refused.

    .venv/bin/python bench/health_latency.py --out bench-results/health_latency.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

MiB = 1 << 20


def _bodies(limit_mb: int) -> dict[str, bytes]:
    """Just-under-limit bodies of three shapes, and one 64 MB body."""
    room = limit_mb * MiB - 64
    url = "https://example.com/" + "a" * 12
    return {
        # one big string: the common case (a long document in a chat message)
        "one_string": json.dumps({"query": "x" * room, "k": 0}).encode(),
        # many short strings: the costliest shape the routes' models accept to decode
        "many_strings": json.dumps({"urls": [url] * (room // (len(url) + 4))}).encode(),
        # millions of empty arrays: pathological, decoded without a model
        "nested_arrays": ("[" + ",".join(["[]"] * (room // 3)) + "]").encode(),
        "over_limit_64mb": b'{"query": "' + b"x" * (64 * MiB) + b'"}',
    }


_ROUTES = {
    "one_string": "/api/kb/bench/search",
    "many_strings": "/api/kb/bench/urls",
    "nested_arrays": "/v1/chat/completions",
    "over_limit_64mb": "/api/kb/bench/search",
}


def _start(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env = {**os.environ, "HANLIN_HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hanlin", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/api/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("hanlin serve did not start")


def _health(url: str, samples: int) -> dict[str, float]:
    times = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for _ in range(samples):
            started = time.perf_counter()
            client.get("/api/health").raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
            time.sleep(0.01)
    times.sort()
    return {
        "p50_ms": round(statistics.median(times), 2),
        "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 2),
        "max_ms": round(times[-1], 2),
    }


def _under_load(url: str, route: str, body: bytes, senders: int, samples: int) -> dict[str, Any]:
    stop = threading.Event()
    statuses: Counter[int] = Counter()
    seconds: list[float] = []

    def send() -> None:
        with httpx.Client(base_url=url, timeout=120) as client:
            while not stop.is_set():
                started = time.perf_counter()
                try:
                    resp = client.post(
                        route, content=body, headers={"content-type": "application/json"}
                    )
                    statuses[resp.status_code] += 1
                except httpx.HTTPError:
                    statuses[0] += 1
                seconds.append(time.perf_counter() - started)

    threads = [threading.Thread(target=send, daemon=True) for _ in range(senders)]
    for t in threads:
        t.start()
    while sum(statuses.values()) < senders:
        time.sleep(0.01)
    result: dict[str, Any] = _health(url, samples)
    stop.set()
    for t in threads:
        t.join()
    result |= {
        "senders": senders,
        "body_mb": round(len(body) / MiB, 2),
        "requests": sum(statuses.values()),
        "statuses": {str(k): v for k, v in statuses.items()},
        "request_p50_s": round(statistics.median(seconds), 3),
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--senders", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--limit-mb", type=int, default=4, help="the server's max_json_mb")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        ),
        "max_json_mb": args.limit_mb,
    }
    with tempfile.TemporaryDirectory() as home:
        (Path(home) / "hanlin.toml").write_text(f"[server]\nmax_json_mb = {args.limit_mb}\n")
        proc, url = _start(Path(home))
        try:
            results["idle"] = _health(url, args.samples)
            for shape, body in _bodies(args.limit_mb).items():
                for n in args.senders:
                    key = f"{shape}_x{n}"
                    results[key] = _under_load(url, _ROUTES[shape], body, n, args.samples)
                    print(key, results[key], flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
