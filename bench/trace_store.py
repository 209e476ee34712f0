"""The trace store at scale, SQLite vs PostgreSQL: sustained write rate in batches of 512 spans
(the tracer's export batch), then p50/p95 of the trace list (no filter, a deep keyset page,
each filter), one trace, and the dashboard's stats.

    .venv/bin/python bench/trace_store.py --spans 200000
    .venv/bin/python bench/trace_store.py --spans 1000000 --backends sqlite,postgres

Data: ``--spans`` / 5 synthetic traces of 5 spans (root request, retrieve, chat, tool, chat),
started over 30 days, written in the order an exporter sees them: children before their root,
several traces in flight at once (shuffled within windows of 40 traces), so a trace's spans
often arrive in two writes. Attributes are sized like real spans with content capture on:
~0.2 kB on the root, ~0.4 kB retrieve and tool, ~1-2 kB per chat (input/output messages).
6 models (Zipf), 8 knowledge bases, 50 API keys (Zipf), 2 % of traces fail; 1 % of queries
hold the word ``invoice`` (the text search that finds its page early), none hold ``zebra``
(the search that reads everything).

Each query runs ``--runs`` times (the filter value cycles over the common ones). PostgreSQL is
the local server of ``hanlin db start`` (bench/.cache/trace_store/pgdata, default settings),
``VACUUM ANALYZE`` after the load as autovacuum would. SQLite's text index is built after the
load, as an idle writer would (timed apart). RSS is this process's (the PostgreSQL server's
memory is its own). The SQLite store is left at bench/.cache/trace_store/traces.sqlite for
``bench/tracing_overhead.py --traces-db``. Results: <out>/trace_store.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil

from hanlin.tracing import SpanRecord, TraceQuery, TraceStore

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache" / "trace_store"
BATCH = 512
DAYS = 30
NOW_NS = 1_767_225_600 * 10**9  # 2026-01-01
MODELS = ["qwen-plus", "deepseek-chat", "gpt-4o-mini", "glm-4-flash", "local/gemma3", "kimi-k2"]
KBS = [f"kb-{name}" for name in ("docs", "hr", "legal", "support", "wiki", "eng", "sales", "it")]
KEYS = [f"key_{i:03d}" for i in range(50)]
WORDS = str.split(
    "how do I reset the password for account billing refund policy shipping delay contract "
    "renewal vacation days travel expense approval vpn access laptop onboarding security "
    "incident report quarterly revenue forecast customer churn pricing tier discount"
)


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def traces(n_traces: int, seed: int = 7) -> Iterator[list[SpanRecord]]:
    """Each trace's five spans, children first (the order they end)."""
    rng = random.Random(seed)
    step = DAYS * 86_400 * 10**9 // max(1, n_traces)
    model_w = [1 / (i + 1) for i in range(len(MODELS))]
    key_w = [1 / (i + 1) for i in range(len(KEYS))]
    for t in range(n_traces):
        tid = f"{rng.getrandbits(128):032x}"
        ids = [f"{rng.getrandbits(64):016x}" for _ in range(5)]
        start = NOW_NS - DAYS * 86_400 * 10**9 + t * step + rng.randrange(step)
        model = rng.choices(MODELS, model_w)[0]
        key = rng.choices(KEYS, key_w)[0]
        kb = rng.choice(KBS)
        query = _text(rng, rng.randint(6, 30)) + (" invoice" if rng.random() < 0.01 else "")
        failed = rng.random() < 0.02
        ms = [rng.lognormvariate(3, 0.5), rng.lognormvariate(6.5, 0.6), 0.0, 0.0]
        ms[2] = rng.lognormvariate(4, 0.8)
        ms[3] = rng.lognormvariate(6.3, 0.6)
        at = start + 2 * 10**6
        spans: list[SpanRecord] = []
        names = ["retrieve", "chat", "execute_tool", "chat"]
        for i, (name, dur) in enumerate(zip(names, ms, strict=True)):
            end = at + int(dur * 10**6)
            span = SpanRecord(tid, ids[i + 1], ids[0], name, at, end, status="ok")
            if name == "retrieve":
                span.kb, span.operation = kb, "retrieve"
                span.attributes = {
                    "hanlin.kb": kb,
                    "hanlin.query": query,
                    "hanlin.top_k": 8,
                    "hanlin.hits": [f"doc-{rng.randrange(10**6)}#{j}" for j in range(8)],
                }
            elif name == "chat":
                span.model, span.provider, span.operation = model, "openai", "chat"
                span.input_tokens, span.output_tokens = rng.randint(200, 4000), rng.randint(20, 800)
                span.cost_usd = span.input_tokens * 4e-7 + span.output_tokens * 1.2e-6
                span.cost_cny = span.cost_usd * 7.2
                span.attributes = {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.request.model": model,
                    "gen_ai.usage.input_tokens": span.input_tokens,
                    "gen_ai.usage.output_tokens": span.output_tokens,
                    "gen_ai.input.messages": json.dumps(
                        [{"role": "user", "content": f"{query} {_text(rng, rng.randint(60, 200))}"}]
                    ),
                    "gen_ai.output.messages": json.dumps(
                        [{"role": "assistant", "content": _text(rng, rng.randint(20, 120))}]
                    ),
                }
            else:
                span.operation = "execute_tool"
                span.attributes = {
                    "gen_ai.tool.name": "search_kb",
                    "gen_ai.tool.call.arguments": json.dumps({"kb": kb, "query": query}),
                    "gen_ai.tool.call.result": _text(rng, rng.randint(20, 60)),
                }
                if failed:
                    span.status, span.error = "error", "tool timed out after 30 s"
            spans.append(span)
            at = end + 10**6
        root = SpanRecord(
            tid, ids[0], None, rng.choice(["POST /v1/chat/completions", "POST /api/ask"]),
            start, at + 10**6, status="error" if failed else "ok", key_id=key,
            attributes={
                "http.request.method": "POST",
                "url.path": "/v1/chat/completions",
                "http.response.status_code": 500 if failed else 200,
                "user_agent.original": "openai-python/1.82.0",
                "hanlin.api_key.id": key,
            },
        )  # fmt: skip
        yield [*spans, root]


def batches(n_spans: int) -> Iterator[list[SpanRecord]]:
    """Batches of 512 spans, several traces in flight at once."""
    rng = random.Random(3)
    pending: list[SpanRecord] = []
    window: list[list[SpanRecord]] = []
    for trace in traces(n_spans // 5):
        window.append(trace)
        if len(window) == 40:
            flat = [s for t in window for s in t]
            rng.shuffle(flat)
            flat.sort(key=lambda s: s.parent_id is None)  # roots end last
            pending += flat
            window = []
        while len(pending) >= BATCH:
            yield pending[:BATCH]
            pending = pending[BATCH:]
    pending += [s for t in window for s in t]
    while pending:
        yield pending[:BATCH]
        pending = pending[BATCH:]


def rss_mb() -> float:
    return round(psutil.Process().memory_info().rss / 2**20, 1)


def load(store: TraceStore, n_spans: int) -> dict[str, Any]:
    before = rss_mb()
    written, busy = 0, 0.0
    started = time.perf_counter()
    for batch in batches(n_spans):
        t0 = time.perf_counter()
        store.write(batch)
        busy += time.perf_counter() - t0
        written += len(batch)
        if written % (BATCH * 200) < BATCH:
            print(f"  {written:,} spans, {written / busy:,.0f} spans/s in write", flush=True)
    return {
        "spans": written,
        "write spans/s (time in write)": round(written / busy),
        "load spans/s (incl. generating)": round(written / (time.perf_counter() - started)),
        "RSS before MB": before,
        "RSS after MB": rss_mb(),
    }


def timed(
    fn: Callable[[int], Any], runs: int, before: Callable[[int], Any] | None = None
) -> dict[str, Any]:
    """p50/p95 of ``runs`` calls after a first one (timed alone: a cold cache, a first
    plan); ``before`` runs untimed ahead of each call."""
    times, sizes = [], []
    for i in range(runs + 1):
        if before is not None:
            before(i)
        t0 = time.perf_counter()
        out = fn(i)
        times.append((time.perf_counter() - t0) * 1000)
        sizes.append(len(out))
    first = times.pop(0)
    times.sort()
    return {
        "p50 ms": round(statistics.median(times), 2),
        "p95 ms": round(times[min(len(times) - 1, int(0.95 * len(times)))], 2),
        "first ms": round(first, 2),
        "rows": round(statistics.mean(sizes), 1),
    }


def late_span(store: TraceStore) -> Callable[[int], None]:
    """Writes one model call on the newest day: that day's stats must be computed again."""

    def write(i: int) -> None:
        at = NOW_NS - 3600 * 10**9 + i * 10**6
        span = SpanRecord(f"{i:032x}", f"{i:016x}", None, "chat", at, at + 10**8, model=MODELS[0])
        store.write([span])

    return write


def measure(store: TraceStore, runs: int) -> dict[str, Any]:
    first = store.list_traces(TraceQuery(limit=1000))
    deep = store.list_traces(TraceQuery(limit=1, before=(NOW_NS - 15 * 86_400 * 10**9, "f" * 32)))
    cursor = (deep[0].start_ns, deep[0].trace_id)
    ids = [t.trace_id for t in first]
    week = NOW_NS - 7 * 86_400 * 10**9
    cases: dict[str, Callable[[int], Any]] = {
        "list, no filter": lambda i: store.list_traces(TraceQuery()),
        "list, page at day 15 (keyset)": lambda i: store.list_traces(TraceQuery(before=cursor)),
        "list, model": lambda i: store.list_traces(TraceQuery(model=MODELS[i % 4])),
        "list, model (rarest, 4 %)": lambda i: store.list_traces(TraceQuery(model=MODELS[5])),
        "list, kb": lambda i: store.list_traces(TraceQuery(kb=KBS[i % len(KBS)])),
        "list, key (rare, 0.5 %)": lambda i: store.list_traces(TraceQuery(key_id=KEYS[40])),
        "list, status=error": lambda i: store.list_traces(TraceQuery(status="error")),
        "list, text 'invoice' (1 %)": lambda i: store.list_traces(TraceQuery(text="invoice")),
        "list, text 'zebra' (no match)": lambda i: store.list_traces(TraceQuery(text="zebra")),
        "get_trace": lambda i: store.get_trace(ids[i % len(ids)]),
        "stats by model, llm, all days": lambda i: store.stats("model"),
        "stats by day, llm, all days": lambda i: store.stats("none"),
        "stats by model, llm, last 7 days": lambda i: store.stats("model", since_ns=week),
        "stats by key, root, all days": lambda i: store.stats("key_id", spans="root"),
    }
    out = {}
    for name, fn in cases.items():
        few = runs if "text" not in name else max(5, runs // 10)  # full scans: fewer
        out[name] = timed(fn, few)
        print(f"  {name}: {out[name]}", flush=True)
    name = "stats by model, llm, all days, after a write to the newest day"
    out[name] = timed(lambda i: store.stats("model"), runs, late_span(store))
    print(f"  {name}: {out[name]}", flush=True)
    return out


def run_sqlite(n_spans: int, runs: int) -> dict[str, Any]:
    from hanlin.tracing.sqlite import SqliteTraceStore

    path = CACHE / "traces.sqlite"
    for p in CACHE.glob("traces.sqlite*"):
        p.unlink()
    store = SqliteTraceStore(path)
    info = load(store, n_spans)
    t0 = time.perf_counter()
    while store.index_text(50_000):  # what an idle writer does, 2,000 spans at a time
        pass
    info["text index s"] = round(time.perf_counter() - t0, 1)
    store.close()
    info["file MB"] = round(sum(p.stat().st_size for p in CACHE.glob("traces.sqlite*")) / 2**20)
    store = SqliteTraceStore(path)  # reopened, as a server process would find it
    info["queries"] = measure(store, runs)
    store.close()
    return info


def run_postgres(n_spans: int, runs: int) -> dict[str, Any]:
    import psycopg

    from hanlin.db.local import start_local
    from hanlin.db.postgres import forget
    from hanlin.tracing.postgres import PostgresTraceStore

    CACHE.chmod(0o755)  # the server may run as its own system user
    server = start_local(CACHE / "pgdata", keep_running=False)
    try:
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS bench_traces WITH (FORCE)")
            conn.execute("CREATE DATABASE bench_traces")
            settings = {
                k: conn.execute(f"SHOW {k}").fetchone()[0]  # type: ignore[index]
                for k in ("shared_buffers", "work_mem", "max_parallel_workers_per_gather")
            }
        base, _, query = server.url.partition("?")
        url = f"{base.rsplit('/', 1)[0]}/bench_traces?{query}"
        store = PostgresTraceStore(url)
        info: dict[str, Any] = {"server": settings, **load(store, n_spans)}
        with psycopg.connect(url, autocommit=True) as conn:
            t0 = time.perf_counter()
            conn.execute("VACUUM ANALYZE trace_spans")
            conn.execute("VACUUM ANALYZE traces")
            info["vacuum analyze s"] = round(time.perf_counter() - t0, 1)
            row = conn.execute("SELECT pg_database_size('bench_traces')").fetchone()
            info["database MB"] = round(row[0] / 2**20) if row else None
        info["queries"] = measure(store, runs)
        forget(url)
    finally:
        server.stop()
    return info


def table(result: dict[str, Any]) -> str:
    backends = [b for b in ("sqlite", "postgres") if b in result]
    lines = [f"# Trace store, {result['spans']:,} spans", ""]
    lines += ["| | " + " | ".join(backends) + " |", "|---|" + "---:|" * len(backends)]
    for key in ("write spans/s (time in write)", "RSS before MB", "RSS after MB"):
        lines.append(f"| {key} | " + " | ".join(str(result[b][key]) for b in backends) + " |")
    size = [str(result[b].get("file MB", result[b].get("database MB"))) for b in backends]
    lines.append("| on disk MB | " + " | ".join(size) + " |")
    lines += ["", "| query: p50 / p95 ms (first call ms) | " + " | ".join(backends) + " |"]
    lines.append("|---|" + "---:|" * len(backends))
    for name in result[backends[0]]["queries"]:
        cells = [result[b]["queries"][name] for b in backends]
        shown = [f"{c['p50 ms']} / {c['p95 ms']} ({c['first ms']})" for c in cells]
        lines.append(f"| {name} | " + " | ".join(shown) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spans", type=int, default=1_000_000)
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--out", type=Path, default=HERE / "out")
    args = ap.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"spans": args.spans, "batch": BATCH, "cpus": os.cpu_count()}
    for backend in args.backends.split(","):
        print(f"{backend}:", flush=True)
        run = run_sqlite if backend == "sqlite" else run_postgres
        result[backend] = run(args.spans, args.runs)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "trace_store.json").write_text(json.dumps(result, indent=2))
    (args.out / "trace_store.md").write_text(table(result))
    print(table(result))


if __name__ == "__main__":
    main()
