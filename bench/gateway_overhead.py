"""Gateway overhead: what Hanlin's model gateway adds on top of a bare HTTP call, next to LiteLLM.

    .bench-venv/bin/python bench/gateway_overhead.py            # needs litellm in the bench venv

The fake upstream (:mod:`hanlin.testing.upstream`) runs in a separate process (uvicorn on
127.0.0.1), so client and server never share an event loop. Three clients send it the same short
chat (model ``m``), streamed and not, at 1, 50 and 200 requests in flight:

- ``direct``: a bare ``httpx.AsyncClient`` POST to ``/v1/chat/completions`` that parses the JSON
  body, or reads the SSE lines and JSON-parses every ``data:`` line: the floor;
- ``hanlin``: ``Gateway.achat`` / ``Gateway.astream`` (routing, pricing, the usage ledger and all);
- ``litellm``: ``litellm.acompletion(model="openai/m", api_base=…, stream=…)``, stream consumed.

Per level each client is warmed up, then the clients run interleaved in rounds (direct, hanlin,
litellm, repeat) so drift (other work on the machine, thermal, the server's heap) hits all three
alike. Reported per client: p50/p95/p99 latency, requests/s, client CPU time per request (the
median over rounds of ``time.process_time`` per request, all threads of this process: the
steadiest overhead number on a small shared machine), the upstream's CPU per request and new TCP
connections per request; and for Hanlin and LiteLLM what they add over ``direct``, with the ratio
LiteLLM-added / Hanlin-added. Targets (issue 3): Hanlin adds ≤ 1 ms at p50 and ≤ 5 ms at p99,
and ≥ 3× less than LiteLLM. ``--clients …,aiohttp`` adds a bare aiohttp session as a second
floor (LiteLLM's transport), to tell the transport's cost from the gateway's.

An audit hook refuses every connection and DNS lookup that is not loopback, so nothing leaves
127.0.0.1 (blocked attempts are counted in the results). Results: bench/out/gateway_overhead.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gateway_clients import MESSAGES, Client, make_client  # noqa: E402

CLIENTS = ("direct", "hanlin", "litellm")
EXTRA_CLIENTS = ("aiohttp",)
MODES = {"nonstream": False, "stream": True}
LOOPBACK = {"127.0.0.1", "::1", "localhost", b"127.0.0.1", b"localhost"}
BLOCKED: list[str] = []
CONNECTS = [0]  # TCP connects made by this process (new connections per request, per client)


# -- nothing leaves 127.0.0.1 ------------------------------------------------------------------


def guard_loopback() -> None:
    """Refuse (and count) every non-loopback connect and DNS lookup in this process."""

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "socket.connect":
            CONNECTS[0] += 1
            addr = args[1]
            if isinstance(addr, tuple) and addr and addr[0] not in LOOPBACK:
                BLOCKED.append(f"connect {addr[0]}:{addr[1]}")
                raise PermissionError(f"benchmark: no connections off 127.0.0.1 ({addr[0]})")
        elif event == "socket.getaddrinfo":
            host = args[0]
            if host is not None and host not in LOOPBACK:
                BLOCKED.append(f"getaddrinfo {host!r}")
                raise PermissionError(f"benchmark: no DNS lookups ({host!r})")

    sys.addaudithook(hook)


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# -- the upstream, in its own process ----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Upstream:
    """``python -m hanlin.testing.upstream`` in a subprocess; ready once it answers a chat call."""

    def __init__(self, port: int = 0) -> None:
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> Upstream:
        import httpx

        cmd = [sys.executable, "-m", "hanlin.testing.upstream", "--port", str(self.port)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        body = {"model": "m", "messages": MESSAGES}
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the fake upstream exited with {self.proc.returncode}")
            try:
                r = httpx.post(
                    self.url + "/chat/completions", json=body, timeout=2, trust_env=False
                )
                if r.status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError("the fake upstream did not answer within 30 s")
            time.sleep(0.1)

    def cpu(self) -> float:
        """CPU seconds the server process has used so far."""
        assert self.proc is not None
        try:
            import psutil

            t = psutil.Process(self.proc.pid).cpu_times()
            return float(t.user + t.system)
        except ImportError:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# -- measuring ---------------------------------------------------------------------------------


@dataclass
class Tally:
    """What one client did at one level, summed over its rounds."""

    latencies: list[float] = field(default_factory=list)
    round_cpu: list[float] = field(default_factory=list)  # CPU seconds per request, per round
    wall: float = 0.0
    cpu: float = 0.0
    server_cpu: float = 0.0
    requests: int = 0
    connects: int = 0
    errors: int = 0
    first_error: str = ""


async def batch(
    client: Client, n: int, conc: int, stream: bool, upstream: Upstream, tally: Tally | None
) -> None:
    """``n`` calls with ``conc`` workers; adds latencies, wall, CPU to ``tally`` (None: warm-up)."""
    remaining = n
    lat: list[float] = []
    errors = 0
    first_error = ""

    async def worker() -> None:
        nonlocal remaining, errors, first_error
        while remaining > 0:
            remaining -= 1
            t = time.perf_counter()
            try:
                await client.call(stream)
            except Exception as exc:
                errors += 1
                first_error = first_error or f"{type(exc).__name__}: {exc}"[:300]
                continue
            lat.append(time.perf_counter() - t)

    srv0 = upstream.cpu()
    conn0 = CONNECTS[0]
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(conc, n))))
    wall = time.perf_counter() - t0
    await client.settle()
    await asyncio.sleep(0.02)
    cpu = time.process_time() - cpu0
    srv = upstream.cpu() - srv0
    if tally is not None:
        tally.latencies += lat
        tally.wall += wall
        tally.cpu += cpu
        tally.round_cpu.append(cpu / n)
        tally.server_cpu += srv
        tally.requests += n
        tally.connects += CONNECTS[0] - conn0
        tally.errors += errors
        tally.first_error = tally.first_error or first_error
    elif errors:
        raise RuntimeError(f"{client.name} failed during warm-up: {first_error}")


def pct(xs: list[float], p: float) -> float:
    """The p-th percentile (linear interpolation), in ms."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = (len(s) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return (s[lo] + (s[hi] - s[lo]) * (k - lo)) * 1000


def summarize(t: Tally) -> dict[str, Any]:
    ok = len(t.latencies)
    return {
        "requests": t.requests,
        "errors": t.errors,
        "first_error": t.first_error or None,
        "p50_ms": round(pct(t.latencies, 50), 3),
        "p95_ms": round(pct(t.latencies, 95), 3),
        "p99_ms": round(pct(t.latencies, 99), 3),
        "mean_ms": round(sum(t.latencies) / ok * 1000, 3) if ok else None,
        "rps": round(ok / t.wall, 1) if t.wall else None,
        # the median over rounds: robust to bursts of other work on a shared machine
        "cpu_us_per_req": round(statistics.median(t.round_cpu) * 1e6, 1) if t.round_cpu else None,
        "cpu_us_per_req_mean": round(t.cpu / t.requests * 1e6, 1) if t.requests else None,
        "server_cpu_us_per_req": round(t.server_cpu / t.requests * 1e6, 1) if t.requests else None,
        "new_connections_per_req": round(t.connects / t.requests, 3) if t.requests else None,
    }


def added(res: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per non-direct client: what it adds over ``direct``; and LiteLLM-added / Hanlin-added."""
    base = res.get("direct")
    out: dict[str, Any] = {}
    if base is None:
        return out
    for name in ("hanlin", "litellm"):
        r = res.get(name)
        if r is None:
            continue
        out[name] = {
            "p50_ms": round(r["p50_ms"] - base["p50_ms"], 3),
            "p95_ms": round(r["p95_ms"] - base["p95_ms"], 3),
            "p99_ms": round(r["p99_ms"] - base["p99_ms"], 3),
            "cpu_us_per_req": round(r["cpu_us_per_req"] - base["cpu_us_per_req"], 1),
        }
    if "hanlin" in out and "litellm" in out:
        h, lt = out["hanlin"], out["litellm"]
        # a ratio only where both add something; a negative "added" means the floor itself was
        # slower at that percentile (noise, or httpx's pool: see the README)
        out["ratio_litellm_over_hanlin"] = {
            k: (round(lt[k] / h[k], 2) if h[k] > 0 and lt[k] > 0 else None) for k in h
        }
    if "hanlin" in out:
        h = out["hanlin"]
        out["hanlin_meets_latency_target"] = h["p50_ms"] <= 1.0 and h["p99_ms"] <= 5.0
        out["floor_slower_than_hanlin"] = h["p50_ms"] < 0
    return out


async def run_level(
    names: list[str],
    clients: dict[str, Client],
    upstream: Upstream,
    stream: bool,
    conc: int,
    n: int,
    rounds: int,
    warmup: int,
) -> dict[str, Any]:
    load_before = load()
    for name in names:
        await batch(clients[name], max(warmup, 2 * conc), conc, stream, upstream, None)
    gc.collect()
    tallies = {name: Tally() for name in names}
    per_round = [n // rounds + (1 if i < n % rounds else 0) for i in range(rounds)]
    for size in per_round:
        for name in names:
            await batch(clients[name], size, conc, stream, upstream, tallies[name])
    res = {name: summarize(t) for name, t in tallies.items()}
    return {
        "mode": "stream" if stream else "nonstream",
        "concurrency": conc,
        "requests_per_client": n,
        "rounds": rounds,
        "load_before": load_before,
        "load_after": load(),
        "clients": res,
        "added_over_direct": added(res),
    }


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("hanlin", "httpx", "litellm", "uvicorn", "aiohttp", "openai"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


@contextlib.contextmanager
def temp_home() -> Iterator[Path]:
    """HANLIN_HOME in a temporary directory (never ~/.hanlin) unless the caller set one."""
    if os.environ.get("HANLIN_HOME"):
        yield Path(os.environ["HANLIN_HOME"])
        return
    with tempfile.TemporaryDirectory(prefix="hanlin-bench-") as d:
        os.environ["HANLIN_HOME"] = d
        try:
            yield Path(d)
        finally:
            del os.environ["HANLIN_HOME"]


async def run(args: argparse.Namespace, upstream: Upstream) -> list[dict[str, Any]]:
    names = [c for c in (*CLIENTS, *EXTRA_CLIENTS) if c in args.clients]
    clients = {name: make_client(name, upstream.url) for name in names}
    # Everything imported and built: move it out of the collector's way, so a full collection
    # during one client's batch does not pay for another client's modules.
    gc.collect()
    gc.freeze()
    results = []
    try:
        for mode in args.modes:
            for conc in args.levels:
                n = args.requests_c1 if conc == 1 else args.requests
                rounds = args.rounds_c1 if conc == 1 else args.rounds
                r = await run_level(
                    names, clients, upstream, MODES[mode], conc, n, rounds, args.warmup
                )
                results.append(r)
                brief = {
                    k: (v["p50_ms"], v["p99_ms"], v["rps"], v["cpu_us_per_req"])
                    for k, v in r["clients"].items()
                }
                print(f"{mode} c={conc} (p50, p99, rps, cpu µs): {brief} load={r['load_after']}")
    finally:
        for c in clients.values():
            await c.aclose()
    return results


def fmt(x: float | None, nd: int = 2) -> str:
    return "—" if x is None else f"{x:.{nd}f}"


def print_tables(results: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 150))
    table = Table(title="Gateway overhead per client (latency ms; CPU µs/req = median over rounds)")
    for col in ("mode", "conc", "client", "p50", "p95", "p99", "req/s", "CPU µs/req",
                "srv CPU µs/req", "new conn/req", "errors", "load"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("mode", "client") else "right")
    for r in results:
        for name, c in r["clients"].items():
            table.add_row(
                r["mode"], str(r["concurrency"]), name, fmt(c["p50_ms"]), fmt(c["p95_ms"]),
                fmt(c["p99_ms"]), fmt(c["rps"], 0), fmt(c["cpu_us_per_req"], 0),
                fmt(c["server_cpu_us_per_req"], 0), fmt(c["new_connections_per_req"]),
                str(c["errors"]),
                "/".join(f"{x:.1f}" for x in r["load_after"]),
            )  # fmt: skip
        table.add_section()
    console.print(table)

    table = Table(title="Added over direct httpx (ms; CPU µs/req) and LiteLLM-added / Hanlin-added")
    for col in ("mode", "conc", "Hanlin +p50", "+p95", "+p99", "+CPU", "LiteLLM +p50", "+p95",
                "+p99", "+CPU", "ratio p50", "p95", "p99", "CPU", "target"):  # fmt: skip
        table.add_column(col, justify="left" if col == "mode" else "right")
    for r in results:
        a = r["added_over_direct"]
        h, lt = a.get("hanlin", {}), a.get("litellm", {})
        ratio = a.get("ratio_litellm_over_hanlin", {})
        target = a.get("hanlin_meets_latency_target")
        verdict = "—" if target is None else ("met" if target else "MISSED")
        if a.get("floor_slower_than_hanlin"):
            verdict += " (floor slower)"
        table.add_row(
            r["mode"], str(r["concurrency"]),
            fmt(h.get("p50_ms")), fmt(h.get("p95_ms")), fmt(h.get("p99_ms")),
            fmt(h.get("cpu_us_per_req"), 0),
            fmt(lt.get("p50_ms")), fmt(lt.get("p95_ms")), fmt(lt.get("p99_ms")),
            fmt(lt.get("cpu_us_per_req"), 0),
            *(fmt(ratio.get(k), 1) for k in ("p50_ms", "p95_ms", "p99_ms", "cpu_us_per_req")),
            verdict,
        )  # fmt: skip
    console.print(table)
    console.print(
        "target (issue 3): Hanlin adds ≤ 1 ms p50 and ≤ 5 ms p99; ratio ≥ 3. ratio '—': one of "
        "the two added nothing (the floor was slower there). 'floor slower': direct httpx had the "
        "higher p50, so 'added' is not an overhead measurement at that level."
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--levels", type=lambda s: [int(x) for x in s.split(",")], default=[1, 50, 200])
    ap.add_argument(
        "--modes", type=lambda s: s.split(","), default=["nonstream", "stream"],
        help="comma-separated: nonstream,stream",
    )  # fmt: skip
    ap.add_argument(
        "--clients",
        type=lambda s: s.split(","),
        default=list(CLIENTS),
        help="comma-separated: direct,hanlin,litellm (default) and aiohttp (a second floor)",
    )
    ap.add_argument("--requests", type=int, default=1500, help="per client, at concurrency > 1")
    ap.add_argument("--requests-c1", type=int, default=1000, help="per client, at concurrency 1")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds, concurrency > 1")
    ap.add_argument("--rounds-c1", type=int, default=10, help="interleaved rounds, concurrency 1")
    ap.add_argument("--warmup", type=int, default=200, help="calls per client before a level")
    ap.add_argument("--port", type=int, default=0, help="upstream port (default: a free one)")
    ap.add_argument("--out", type=Path, default=HERE / "out" / "gateway_overhead.json")
    args = ap.parse_args()
    for m in args.modes:
        if m not in MODES:
            ap.error(f"unknown mode {m!r}")
    for c in args.clients:
        if c not in (*CLIENTS, *EXTRA_CLIENTS):
            ap.error(f"unknown client {c!r}")

    guard_loopback()
    started = time.time()
    uptime_before = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    with temp_home(), Upstream(args.port) as upstream:
        results = asyncio.run(run(args, upstream))
    uptime_after = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    report = {
        "benchmark": "gateway_overhead",
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "versions": versions(),
        "uptime_before": uptime_before,
        "uptime_after": uptime_after,
        "seconds": round(time.time() - started, 1),
        "blocked_non_loopback": BLOCKED,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print_tables(results)
    print(f"load: before [{uptime_before}]  after [{uptime_after}]")
    if BLOCKED:
        print(f"blocked {len(BLOCKED)} non-loopback attempts: {sorted(set(BLOCKED))[:5]}")
    print(f"wrote {args.out} ({report['seconds']} s)")


if __name__ == "__main__":
    main()
