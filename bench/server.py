"""The HTTP server under load: what ``hanlin serve`` adds to a model call, how many embedding and
knowledge-base search requests it answers per second, and whether 200 streaming clients for a
minute cause errors or memory growth.

    .venv/bin/python bench/server.py                  # ~3 min on 2 shared cores
    .venv/bin/python bench/server.py --soak-seconds 20 --quick

Three processes, all on 127.0.0.1: the fake OpenAI upstream (``python -m
hanlin.testing.upstream``), the Hanlin server (``python -m hanlin serve``, ``HANLIN_HOME`` a
temporary directory whose ``hanlin.toml`` points the endpoint ``fake`` at the upstream, with a
knowledge base built from ``samples/``), and this process, the clients:

- **TTFT**: time to the first content token of a streamed chat, one request at a time, through
  the server (``httpx`` streaming ``/v1/chat/completions``) and in-process (``Gateway.astream``
  against the same upstream), interleaved in rounds; p50/p95 of both and the difference.
- **embeddings**: ``POST /v1/embeddings`` (one short sentence, ``local-embed/fast-use``) from 50
  concurrent clients for a fixed time: requests/s, p50/p95 latency, errors.
- **search**: ``POST /api/kb/sample/search`` (hybrid, k = 5, a different query each time, so the
  query-embedding cache does not help) from 50 concurrent clients: the same numbers.
- **soak**: 200 concurrent clients streaming chat completions against the fake upstream for
  60 s; every stream must end in ``data: [DONE]`` with status 200 (errors counted, target 0),
  and the server's RSS is sampled every 5 s (target: flat after warm-up).

An audit hook refuses every non-loopback connection and DNS lookup in this process. Results:
``bench/out/server.json``; read them with the load average next to them (``uptime`` before
and after is recorded).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from gateway_overhead import Upstream, free_port, guard_loopback, load  # noqa: E402

MODEL = "fake/m"
MESSAGES: list[dict[str, Any]] = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Say hello in one short sentence."},
]
WORDS = [
    "retrieval",
    "hybrid",
    "search",
    "vector",
    "database",
    "keyword",
    "BM25",
    "embedding",
    "chunk",
    "citation",
    "翰林院",
    "向量",
    "检索",
    "混合",
    "语义",
    "关键词",
    "GPU",
    "显存",
    "训练",
    "推理",
    "知识库",
    "文档",
    "模型",
]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary_ms(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(pct(values, 0.50) * 1000, 3),
        "p95_ms": round(pct(values, 0.95) * 1000, 3),
        "mean_ms": round(statistics.fmean(values) * 1000, 3) if values else float("nan"),
        "n": len(values),
    }


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- the server, in its own process -------------------------------------------------------------


class Server:
    """``python -m hanlin serve`` on a free port, over a prepared ``HANLIN_HOME``."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        import httpx

        env = {**os.environ, "HANLIN_HOME": str(self.home)}
        cmd = [sys.executable, "-m", "hanlin", "serve", "--port", str(self.port)]
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}")
            try:
                if httpx.get(self.url + "/api/health", timeout=2, trust_env=False).is_success:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError("the server did not answer within 60 s")
            time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def prepare_home(home: Path, upstream_url: str) -> None:
    """hanlin.toml pointing ``fake`` at the upstream, and the knowledge base ``sample``."""
    (home / "hanlin.toml").write_text(
        f'[models.endpoints.fake]\nbase_url = "{upstream_url}"\n\n[models]\nretries = 0\n',
        "utf-8",
    )
    from hanlin.config import load_settings
    from hanlin.knowledge.kb import KnowledgeBase

    settings = load_settings(home=home)
    with KnowledgeBase.create("sample", settings=settings) as kb:
        report = kb.add(HERE.parent / "samples")
        print(f"knowledge base: {report.documents_added} documents, {report.chunks_written} chunks")


# -- a lean HTTP/1.1 client ---------------------------------------------------------------------


class Conn:
    """One keep-alive HTTP/1.1 connection (h11 over asyncio streams), owned by one worker.

    httpx's async pool costs more CPU per request than the server under test once dozens of
    requests are in flight (see ``gateway_overhead.py``), so the load comes from this instead.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.h: Any = None

    async def request(
        self, method: str, path: str, body: Any = None, on_data: Any = None
    ) -> tuple[int, bytes]:
        import h11

        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
            self.h = h11.Connection(h11.CLIENT)
        assert self.reader is not None
        payload = b"" if body is None else json.dumps(body, ensure_ascii=False).encode()
        headers = [("Host", f"127.0.0.1:{self.port}"), ("Content-Length", str(len(payload)))]
        if body is not None:
            headers.append(("Content-Type", "application/json"))
        out = self.h.send(h11.Request(method=method, target=path, headers=headers))
        if payload:
            out += self.h.send(h11.Data(data=payload))
        out += self.h.send(h11.EndOfMessage())
        self.writer.write(out)
        status, chunks = 0, []
        while True:
            event = self.h.next_event()
            if event is h11.NEED_DATA:
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionError("the server closed the connection")
                self.h.receive_data(data)
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                chunks.append(event.data)
                if on_data is not None:
                    on_data(event.data)
            elif isinstance(event, h11.EndOfMessage):
                break
        self.h.start_next_cycle()
        return status, b"".join(chunks)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def first_token(data: bytes) -> bool:
    """Whether an SSE piece holds a chunk with non-empty content."""
    for line in data.split(b"\n"):
        if line.startswith(b"data: {"):
            chunk = json.loads(line[6:])
            if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                return True
    return False


# -- measurements ------------------------------------------------------------------------------


async def ttft(server: Server, upstream_url: str, rounds: int, per_round: int) -> dict[str, Any]:
    from hanlin.config import load_settings
    from hanlin.models.gateway import Gateway
    from hanlin.models.types import TextDelta

    settings = load_settings(
        home=server.home, models={"endpoints": {"fake": {"base_url": upstream_url}}, "retries": 0}
    )
    gw = Gateway(settings)
    conn = Conn(server.port)
    body = {"model": MODEL, "messages": MESSAGES, "stream": True}

    async def via_server() -> float:
        start = time.perf_counter()
        first: list[float] = []

        def on_data(data: bytes) -> None:
            if not first and first_token(data):
                first.append(time.perf_counter() - start)

        status, _ = await conn.request("POST", "/v1/chat/completions", body, on_data)
        assert status == 200 and first
        return first[0]

    async def in_process() -> float:
        start = time.perf_counter()
        first = None
        async for event in gw.astream(MESSAGES, MODEL):
            if first is None and isinstance(event, TextDelta) and event.text:
                first = time.perf_counter() - start
        assert first is not None
        return first

    served: list[float] = []
    direct: list[float] = []
    for _ in range(20):  # warm-up: connections, caches
        await via_server()
        await in_process()
    for _ in range(rounds):
        served += [await via_server() for _ in range(per_round)]
        direct += [await in_process() for _ in range(per_round)]
    conn.close()
    await gw.aclose()
    s, d = summary_ms(served), summary_ms(direct)
    return {
        "server": s,
        "in_process": d,
        "overhead_p50_ms": round(s["p50_ms"] - d["p50_ms"], 3),
        "overhead_p95_ms": round(s["p95_ms"] - d["p95_ms"], 3),
    }


async def throughput(
    port: int, path: str, make_body: Any, concurrency: int, seconds: float, warmup: float = 3.0
) -> dict[str, Any]:
    """``concurrency`` workers POSTing for ``seconds`` (after a warm-up); req/s and latency."""
    latencies: list[float] = []
    errors: list[str] = []
    measuring = False
    first = Conn(port)  # loads models and opens indexes before the clock starts
    status, data = await first.request("POST", path, make_body())
    first.close()
    assert status == 200, data[:300]
    stop_at = time.monotonic() + warmup + seconds

    async def worker() -> None:
        conn = Conn(port)
        while time.monotonic() < stop_at:
            start = time.perf_counter()
            try:
                status, data = await conn.request("POST", path, make_body())
                ok = status == 200
                if not ok:
                    errors.append(f"{status}: {data[:200]!r}")
            except (OSError, ValueError) as exc:
                ok = False
                errors.append(f"{type(exc).__name__}: {exc}")
                conn.close()
            if measuring and ok:
                latencies.append(time.perf_counter() - start)
        conn.close()

    tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
    await asyncio.sleep(warmup)
    measuring = True
    t0 = time.monotonic()
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - t0
    return {
        "concurrency": concurrency,
        "seconds": round(elapsed, 1),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "errors": len(errors),
        "error_samples": errors[:5],
        **summary_ms(latencies),
    }


async def soak(server: Server, clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` concurrent streaming chats for ``seconds``; errors and server RSS."""
    assert server.proc is not None
    pid = server.proc.pid
    body = {"model": MODEL, "messages": MESSAGES, "stream": True}
    done = 0
    errors: list[str] = []
    stop_at = time.monotonic() + seconds
    samples: list[tuple[float, float]] = [(0.0, round(rss_mb(pid), 1))]
    t0 = time.monotonic()

    async def worker() -> None:
        nonlocal done
        conn = Conn(server.port)
        while time.monotonic() < stop_at:
            try:
                status, data = await conn.request("POST", "/v1/chat/completions", body)
                if status != 200 or not data.rstrip().endswith(b"data: [DONE]"):
                    errors.append(f"{status}, ends with {data[-120:]!r}")
                else:
                    done += 1
            except (OSError, ValueError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                conn.close()
        conn.close()

    async def sampler() -> None:
        while time.monotonic() < stop_at:
            await asyncio.sleep(5)
            samples.append((round(time.monotonic() - t0, 1), round(rss_mb(pid), 1)))

    await asyncio.gather(sampler(), *[worker() for _ in range(clients)])
    elapsed = time.monotonic() - t0
    warm = [mb for t, mb in samples if t >= 10] or [samples[-1][1]]
    return {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "streams_completed": done,
        "streams_per_s": round(done / elapsed, 1),
        "errors": len(errors),
        "error_samples": errors[:5],
        "rss_mb": samples,
        "rss_growth_after_warmup_pct": round(100 * (warm[-1] - warm[0]) / warm[0], 1),
    }


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(7)
    results: dict[str, Any] = {"uptime_before": uptime(), "load_before": load()}
    with tempfile.TemporaryDirectory(prefix="hanlin-bench-server-") as tmp:
        home = Path(tmp)
        with Upstream() as upstream:
            prepare_home(home, upstream.url)
            with Server(home) as server:
                print(f"server {server.url}, upstream {upstream.url}")
                results["ttft"] = await ttft(server, upstream.url, args.rounds, args.per_round)
                print("ttft", json.dumps(results["ttft"]))
                results["embeddings"] = await throughput(
                    server.port,
                    "/v1/embeddings",
                    lambda: {
                        "model": "local-embed/fast-use",
                        "input": " ".join(rng.sample(WORDS, 6)),
                    },
                    50,
                    args.seconds,
                )
                print("embeddings", json.dumps(results["embeddings"]))
                results["search"] = await throughput(
                    server.port,
                    "/api/kb/sample/search",
                    lambda: {"query": " ".join(rng.sample(WORDS, 4)), "k": 5},
                    50,
                    args.seconds,
                )
                print("search", json.dumps(results["search"]))
                results["load_before_soak"] = load()
                results["soak"] = await soak(server, args.soak_clients, args.soak_seconds)
                print("soak", json.dumps(results["soak"]))
    results["uptime_after"] = uptime()
    results["load_after"] = load()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="TTFT rounds (interleaved)")
    parser.add_argument("--per-round", type=int, default=60, help="TTFT requests per round")
    parser.add_argument("--seconds", type=float, default=20, help="per throughput measurement")
    parser.add_argument("--soak-clients", type=int, default=200)
    parser.add_argument("--soak-seconds", type=float, default=60)
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test)")
    parser.add_argument("--out", type=Path, default=HERE / "out" / "server.json")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.per_round, args.seconds = 2, 20, 5
    guard_loopback()
    results = asyncio.run(main_async(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", "utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
