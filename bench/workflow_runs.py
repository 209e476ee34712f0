"""`bench/workflows.py` parts 3 and 4: 1,000 concurrent runs with a human pause (a subprocess
per framework), and crash-resume under SIGKILL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from workflow_graphs import (
    HERE,
    hanlin_approve,
    hanlin_drive,
    hwm_mb,
    lg_approve,
    log,
    rss_mb,
    settings_for,
)

# --- 3. concurrent runs with a human pause (a subprocess per framework) --------------------


class RssPeak:
    """RSS sampled every 50 ms on a thread: the peak."""

    def __init__(self) -> None:
        self.peak = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_mb())

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


async def concurrent_hanlin(home: Path, n: int, concurrency: int) -> dict[str, Any]:
    from hanlin.flows import FlowEngine

    engine = FlowEngine(settings_for(home))
    wf = hanlin_approve()
    sem = asyncio.Semaphore(concurrency)

    async def start(i: int) -> str:
        async with sem:
            run = await asyncio.to_thread(engine.start, wf, {"n": i})
            last = await hanlin_drive(engine, run.id)
            if type(last).__name__ != "RunPausedEvent":
                raise RuntimeError(f"run {run.id} did not pause: {last!r}")
            return str(run.id)

    async def answer(run_id: str) -> None:
        async with sem:
            await asyncio.to_thread(engine.answer, run_id, {"approved": True})
            last = await hanlin_drive(engine, run_id)
            if getattr(last, "status", None) != "done":
                raise RuntimeError(f"run {run_id} ended {last!r}")

    # warm-up: one whole run
    await answer(await start(-1))
    base = rss_mb()
    with RssPeak() as peak:
        t0 = time.perf_counter()
        ids = await asyncio.gather(*(start(i) for i in range(n)))
        t1 = time.perf_counter()
        paused = await asyncio.to_thread(engine.store.list_runs, "approve", "paused", n + 10)
        t2 = time.perf_counter()
        await asyncio.gather(*(answer(r) for r in ids))
        t3 = time.perf_counter()
    ok = 0
    for i, run_id in enumerate(ids):
        run = engine.store.get_run(run_id)
        ok += run.status == "done" and run.outputs == {"n": i, "approved": True}
    engine.close()
    return _concurrent_result(n, concurrency, t1 - t0, t3 - t2, len(paused), ok, base, peak.peak)


async def concurrent_langgraph(home: Path, n: int, concurrency: int) -> dict[str, Any]:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
    from langgraph.types import Command

    async with AsyncSqliteSaver.from_conn_string(str(home / "langgraph.sqlite")) as saver:
        await saver.setup()
        app = lg_approve(saver)
        sem = asyncio.Semaphore(concurrency)

        def cfg(i: int) -> dict[str, Any]:
            return {"configurable": {"thread_id": f"t{i}"}}

        async def start(i: int) -> bool:
            async with sem:
                out = await app.ainvoke({"n": i}, cfg(i), durability="sync")
                return "__interrupt__" in out

        async def answer(i: int) -> bool:
            async with sem:
                out = await app.ainvoke(
                    Command(resume={"approved": True}), cfg(i), durability="sync"
                )
                return bool(out.get("out") == {"n": i, "approved": True})

        await start(-1)
        await answer(-1)
        base = rss_mb()
        with RssPeak() as peak:
            t0 = time.perf_counter()
            paused = sum(await asyncio.gather(*(start(i) for i in range(n))))
            t1 = time.perf_counter()
            t2 = time.perf_counter()
            answered = await asyncio.gather(*(answer(i) for i in range(n)))
            t3 = time.perf_counter()
        ok = 0
        for i in range(n):
            state = await app.aget_state(cfg(i))
            ok += (
                bool(answered[i])
                and not state.next
                and state.values.get("out")
                == {
                    "n": i,
                    "approved": True,
                }
            )
    return _concurrent_result(n, concurrency, t1 - t0, t3 - t2, paused, ok, base, peak.peak)


def _concurrent_result(
    n: int, c: int, start_s: float, answer_s: float, paused: int, ok: int, base: float, peak: float
) -> dict[str, Any]:
    return {
        "runs": n,
        "in flight": c,
        "start→paused s": round(start_s, 2),
        "start→paused runs/s": round(n / start_s, 1),
        "answer→done s": round(answer_s, 2),
        "answer→done runs/s": round(n / answer_s, 1),
        "whole runs/s": round(n / (start_s + answer_s), 1),
        "paused after phase 1": paused,
        "done with the right outputs": ok,
        "lost": n - ok,
        "RSS MB before": round(base, 1),
        "peak RSS MB": round(peak, 1),
        "peak RSS MB (VmHWM)": round(hwm_mb(), 1),
        "RSS growth KB/run": round((peak - base) * 1024 / n, 1),
    }


def concurrent(home: Path, framework: str, n: int, c: int) -> dict[str, Any]:
    """The measurement in a fresh process (its RSS is this test's alone)."""
    wdir = home / f"concurrent-{framework.split()[0]}"
    wdir.mkdir()
    cmd = [sys.executable, str(HERE / "workflows.py"), "--worker", framework, "--dir", str(wdir)]
    cmd += ["--concurrent", str(n), "--concurrency", str(c)]
    env = {**os.environ, "HANLIN_HOME": str(wdir)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"{framework} worker failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
        )
    return dict(json.loads(lines[-1][len("RESULT ") :]))


# --- 4. crash-resume -----------------------------------------------------------------------

CRASHY = """
name: crashy
nodes:
  - {id: start, type: start, inputs: {tag: string}}
  - {id: first, type: http_request, method: POST, url: "URL/first", body: {tag: "{{start.tag}}"}}
  - id: each
    type: iteration
    items: [0, 1, 2, 3, 4]
    body:
      nodes:
        - {id: hit, type: http_request, method: POST, url: "URL/item", body: {i: "{{each.item}}"}}
    output: "{{hit.json.echo}}"
  - {id: last, type: http_request, method: POST, url: "URL/last", body: {seen: "{{each.output}}"}}
  - {id: out, type: end, outputs: {items: "{{each.output}}", first: "{{first.json.echo}}"}}
"""
EFFECTS = ("first", *(f"each[{i}].hit" for i in range(5)), "last")


class CountingServer:
    """Answers ``{"n", "echo": body}`` after ``delay`` s; records each Idempotency-Key's
    arrival times."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.arrivals: dict[str, list[float]] = defaultdict(list)
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(size).decode() if size else ""
                with owner.lock:
                    owner.arrivals[self.headers.get("idempotency-key", "")].append(time.time())
                    n = sum(len(v) for v in owner.arrivals.values())
                time.sleep(owner.delay)
                data = json.dumps({"n": n, "echo": body}).encode()
                with contextlib.suppress(OSError):  # the client was killed meanwhile
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def crash(home: Path, kills: int, delay: float, seed: int) -> dict[str, Any]:
    from hanlin.flows import FlowEngine, Workflow

    rng = random.Random(seed)
    server = CountingServer(delay)
    host = server.url.removeprefix("http://")
    settings = settings_for(home, hosts=[host])
    env = {
        **os.environ,
        "HANLIN_HOME": str(home),
        "HANLIN_WORKFLOWS__ALLOWED_HOSTS": json.dumps([host]),
        "HANLIN_TRACING__ENABLED": "false",
    }
    engine = FlowEngine(settings)
    wf = Workflow.from_yaml(CRASHY.replace("URL", server.url))
    db = home / "workflows.sqlite"

    def cli(run_id: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "hanlin", "workflow", "resume", run_id, "--json"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env,
        )

    def status(run_id: str) -> tuple[str, str | None]:
        conn = sqlite3.connect(db, timeout=30)
        try:
            return conn.execute(
                "SELECT status, owner FROM flow_runs WHERE id = ?", (run_id,)
            ).fetchone()  # type: ignore[no-any-return]
        finally:
            conn.close()

    def recorded(run_id: str) -> set[str]:
        conn = sqlite3.connect(db, timeout=30)
        try:
            rows = conn.execute("SELECT key FROM flow_effects WHERE run_id = ?", (run_id,))
            return {k.removeprefix("node:") for (k,) in rows if k.startswith("node:")}
        finally:
            conn.close()

    def wait_claimed(run_id: str, proc: subprocess.Popen[bytes]) -> float:
        t0 = time.time()
        while time.time() - t0 < 60:
            st, owner = status(run_id)
            if (st == "running" and owner) or proc.poll() is not None:
                return time.time()
            time.sleep(0.005)
        raise RuntimeError(f"run {run_id} was never claimed")

    # calibration: one run without a kill (how long a run takes once claimed)
    run_id = engine.start(wf, {"tag": "calibration"}).id
    proc = cli(run_id)
    claimed = wait_claimed(run_id, proc)
    proc.wait(timeout=120)
    active = time.time() - claimed
    if status(run_id)[0] != "done":
        raise RuntimeError(
            f"calibration run: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}"
        )
    log(f"crash: a run takes {active:.2f} s once claimed; {kills} runs, one SIGKILL each")
    trials: list[dict[str, Any]] = []
    t = 0
    # a kill drawn after the run's end does not count: runs go on until ``kills`` have landed
    while sum(tr["killed"] for tr in trials) < kills and t < 2 * kills:
        t += 1
        tag = f"t{t}"
        run_id = engine.start(wf, {"tag": tag}).id
        proc = cli(run_id)
        claimed_at = wait_claimed(run_id, proc)
        time.sleep(rng.uniform(0, active))
        killed_at = time.time()
        alive = proc.poll() is None
        if alive:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        done_at_kill = recorded(run_id)
        steps_at_kill = engine.store.get_run(run_id).steps
        resumes = 0
        while status(run_id)[0] != "done" and resumes < 3:
            resumes += 1
            again = cli(run_id)
            _, err = again.communicate(timeout=180)
            if again.returncode != 0:
                log(f"crash: resume of {run_id} exited {again.returncode}: {err.decode()[-500:]}")
        run = engine.store.get_run(run_id)
        correct = run.status == "done" and run.outputs == {
            "items": [f'{{"i": {i}}}' for i in range(5)],
            "first": json.dumps({"tag": tag}),
        }
        with server.lock:
            counts = {p: server.arrivals.get(f"{run_id}:{p}", []) for p in EFFECTS}
        in_flight = repeated = other = 0
        for p, times in counts.items():
            extra = len(times) - 1
            if extra <= 0:
                continue
            if p in done_at_kill:
                repeated += extra
            elif times[0] <= killed_at:
                in_flight += extra
            else:
                other += extra
        trial = {
            "run": run_id,
            "killed": alive,
            "kill after s": round(killed_at - claimed_at, 3),
            "steps at kill": steps_at_kill,
            "effects recorded at kill": len(done_at_kill),
            "resumes": resumes,
            "correct": correct,
            "missing effects": sum(1 for v in counts.values() if not v),
            "requests": sum(len(v) for v in counts.values()),
            "distinct keys": sum(1 for v in counts.values() if v),
            "duplicates in flight": in_flight,
            "duplicates after record": repeated,
            "duplicates other": other,
        }
        trials.append(trial)
        log(f"crash run {t}:", json.dumps(trial))
    engine.close()
    server.close()
    return {
        "seed": seed,
        "server delay s": delay,
        "run s once claimed": round(active, 2),
        "runs": len(trials),
        "kills landed": sum(tr["killed"] for tr in trials),
        "correct completions": sum(tr["correct"] for tr in trials),
        "effects per run": len(EFFECTS),
        "requests received": sum(tr["requests"] for tr in trials),
        "distinct Idempotency-Keys received": sum(tr["distinct keys"] for tr in trials),
        "missing effects": sum(tr["missing effects"] for tr in trials),
        "repeated requests, in flight at the kill": sum(
            tr["duplicates in flight"] for tr in trials
        ),
        "repeated requests, recorded before the kill": sum(
            tr["duplicates after record"] for tr in trials
        ),
        "repeated requests, otherwise": sum(tr["duplicates other"] for tr in trials),
        "trials": trials,
    }
