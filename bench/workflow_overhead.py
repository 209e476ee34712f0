"""`bench/workflows.py` parts 1 and 2: engine overhead per run and node, and checkpoint bytes
per step, Hanlin vs LangGraph."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import statistics
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from workflow_graphs import (
    QUESTION,
    Work,
    _pass_node,
    _pass_node_sync,
    hanlin_once,
    hanlin_pass,
    hanlin_rag,
    lg_once,
    lg_pass,
    lg_rag,
    log,
    pct,
    settings_for,
)

# --- 1. overhead ---------------------------------------------------------------------------

Arm = Callable[[], Awaitable[Any]]


async def interleave(
    arms: dict[str, Arm], check: Callable[[str, Any], None], runs: int, block: int = 10
) -> dict[str, dict[str, Any]]:
    """Each arm ``runs`` times, one run at a time, the arms rotating in blocks of ``block``;
    wall time per run, CPU per run (median over blocks)."""
    for name, arm in arms.items():
        for _ in range(max(5, block)):
            check(name, await arm())
    wall: dict[str, list[float]] = defaultdict(list)
    cpu: dict[str, list[float]] = defaultdict(list)
    names = list(arms)
    for r in range(max(1, runs // block)):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            arm = arms[name]
            c0 = time.process_time()
            for _ in range(block):
                t0 = time.perf_counter()
                out = await arm()
                wall[name].append(time.perf_counter() - t0)
                check(name, out)
            cpu[name].append((time.process_time() - c0) / block)
    return {
        name: {
            "runs": len(wall[name]),
            "p50 ms": pct(wall[name], 50),
            "p95 ms": pct(wall[name], 95),
            "mean ms": round(statistics.fmean(wall[name]) * 1000, 3),
            "cpu ms/run": round(statistics.median(cpu[name]) * 1000, 3),
        }
        for name in names
    }


RATIO_KEYS = ("overhead p50 ms/run", "overhead p95 ms/run", "overhead cpu ms/run")


def summarise(arms: dict[str, dict[str, Any]], nodes: int) -> dict[str, Any]:
    """Overhead of each engine arm over its API's direct floor (``direct`` for the async arms,
    ``direct (sync)`` for the sync ones): per run and per node, p50/p95, CPU; and the ratio
    LangGraph / Hanlin for each API."""
    found: dict[str, Any] = {}
    for name, m in arms.items():
        if name.startswith("direct"):
            continue
        floor = arms["direct (sync)" if "(sync" in name else "direct"]
        o50 = m["p50 ms"] - floor["p50 ms"]
        o95 = m["p95 ms"] - floor["p95 ms"]
        ocpu = m["cpu ms/run"] - floor["cpu ms/run"]
        found[name] = {
            "overhead p50 ms/run": round(o50, 3),
            "overhead p95 ms/run": round(o95, 3),
            "overhead p50 ms/node": round(o50 / nodes, 3),
            "overhead p95 ms/node": round(o95 / nodes, 3),
            "overhead cpu ms/run": round(ocpu, 3),
            "overhead cpu ms/node": round(ocpu / nodes, 3),
        }
    for api, h, g in (
        ("async", "hanlin", "langgraph"),
        ("sync", "hanlin (sync)", "langgraph (sync)"),
    ):
        if h in found and g in found:
            found[f"ratio langgraph/hanlin, {api} API"] = {
                k: round(found[g][k] / found[h][k], 2) if found[h][k] > 0 else None
                for k in RATIO_KEYS
            }
    return found


async def hanlin_commits(
    settings: Any, gateway: Any, wf: Any, inputs: dict[str, Any], path: Path, runs: int = 5
) -> float:
    """Write transactions per run of ``wf`` in a fresh run store (WAL autocheckpoint off)."""
    from hanlin.flows import FlowEngine
    from hanlin.flows.sqlite import SqliteFlowStore

    engine = FlowEngine(settings, store=SqliteFlowStore(path), gateway=gateway)
    try:
        engine.store._connection().execute("PRAGMA wal_autocheckpoint=0")  # type: ignore[attr-defined]
        await hanlin_once(engine, wf, inputs)
        before = wal_commits(path)
        for _ in range(runs):
            await hanlin_once(engine, wf, inputs)
        return round((wal_commits(path) - before) / runs, 1)
    finally:
        engine.close()


async def lg_commits(
    build: Callable[[Any], Any], inputs: dict[str, Any], path: Path, runs: int = 5
) -> float:
    """The same for LangGraph's ``AsyncSqliteSaver`` (``durability="sync"``)."""
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
        await saver.setup()
        await saver.conn.execute("PRAGMA wal_autocheckpoint=0")
        app = build(saver)
        await lg_once(app, inputs, "sync")
        before = wal_commits(path)
        for _ in range(runs):
            await lg_once(app, inputs, "sync")
        return round((wal_commits(path) - before) / runs, 1)


async def overhead(
    home: Path,
    upstream: str,
    runs: int,
    use_lg: bool,
    graphs: tuple[str, ...] = ("pass20", "rag"),
    synchronous: str = "full",
) -> dict[str, Any]:
    """Both graphs, through each framework's async API (on this loop) and its sync API (Hanlin:
    ``FlowEngine.run``, which drives the run on the gateway's loop thread; LangGraph:
    ``invoke`` with the sync ``SqliteSaver``), each against its own direct floor. The sync
    arms use a second Gateway and engine: an async HTTP client belongs to one event loop."""
    from hanlin.flows import FlowEngine
    from hanlin.knowledge.kb import KnowledgeBase
    from hanlin.models.gateway import Gateway

    settings = settings_for(home, upstream, synchronous=synchronous)
    docs = home / "docs"
    docs.mkdir()
    for i in range(20):
        (docs / f"tea{i}.md").write_text(
            f"# Tea {i}\n\nOolong tea number {i} is grown in Fujian and Taiwan. It is partly "
            "oxidised, between green and black tea.\n",
            "utf-8",
        )
    kb = await asyncio.to_thread(KnowledgeBase.create, "bench", settings=settings)
    await asyncio.to_thread(kb.add, docs)
    gateway, gateway_sync = Gateway(settings), Gateway(settings)
    engine = FlowEngine(settings, gateway=gateway)
    engine_sync = FlowEngine(settings, gateway=gateway_sync)
    work, work_sync = Work(kb, gateway, settings), Work(kb, gateway_sync, settings)
    x = "p" * 100
    result: dict[str, Any] = {}
    lg_ctx = saver = saver_sync = None
    if use_lg:
        from langgraph.checkpoint.sqlite import SqliteSaver
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        lg_ctx = AsyncSqliteSaver.from_conn_string(str(home / "langgraph.sqlite"))
        saver = await lg_ctx.__aenter__()
        await saver.setup()
        conn = sqlite3.connect(home / "langgraph-sync.sqlite", check_same_thread=False)
        saver_sync = SqliteSaver(conn)
        saver_sync.setup()
        if synchronous != "full":  # the same setting on both sides
            await saver.conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
            conn.execute(f"PRAGMA synchronous={synchronous.upper()}")

    async def sync_arm(fn: Callable[[], Any]) -> Any:
        return fn()  # blocks this loop: runs are one at a time

    def sync_invoke(app: Any, inputs: dict[str, Any]) -> dict[str, Any]:
        config = {"configurable": {"thread_id": uuid.uuid4().hex}}
        return dict(app.invoke(inputs, config, durability="sync"))

    def hanlin_sync(wf: Any, inputs: dict[str, Any]) -> dict[str, Any]:
        run = engine_sync.run(wf, inputs)
        if run.status != "done":
            raise RuntimeError(f"hanlin sync run {run.id} is {run.status}: {run.error}")
        return dict(run.outputs or {})

    try:
        if "pass20" in graphs:
            # pass20
            wf = hanlin_pass(20)

            async def direct_pass() -> dict[str, Any]:
                state: dict[str, Any] = {"x": x}
                for _ in range(20):
                    state = await _pass_node(state)
                return state

            def direct_pass_sync() -> dict[str, Any]:
                state: dict[str, Any] = {"x": x}
                for _ in range(20):
                    state = _pass_node_sync(state)
                return state

            arms: dict[str, Arm] = {
                "direct": direct_pass,
                "hanlin": lambda: hanlin_once(engine, wf, {"x": x}),
                "direct (sync)": lambda: sync_arm(direct_pass_sync),
                "hanlin (sync)": lambda: sync_arm(lambda: hanlin_sync(wf, {"x": x})),
            }
            if use_lg:
                app, app_sync = lg_pass(saver, 20), lg_pass(saver_sync, 20, sync=True)
                arms["langgraph"] = lambda: lg_once(app, {"x": x}, "sync")
                arms["langgraph (durability=async)"] = lambda: lg_once(app, {"x": x}, "async")
                arms["langgraph (sync)"] = lambda: sync_arm(lambda: sync_invoke(app_sync, {"x": x}))

            def check_pass(name: str, out: Any) -> None:
                if out.get("x") != x:
                    raise RuntimeError(f"{name}: wrong output {out!r}")

            log(f"overhead: pass20, {len(arms)} arms × {runs} runs …")
            measured = await interleave(arms, check_pass, runs)
            result["pass20"] = {"arms": measured, "overhead": summarise(measured, 20)}
            result["pass20"]["commits/run"] = {
                "hanlin": await hanlin_commits(
                    settings, gateway, wf, {"x": x}, home / "c-h-pass.sqlite"
                )
            }
            if use_lg:
                result["pass20"]["commits/run"]["langgraph"] = await lg_commits(
                    lambda sv: lg_pass(sv, 20), {"x": x}, home / "c-l-pass.sqlite"
                )
            log("pass20", json.dumps(result["pass20"]["overhead"]))

        if "rag" in graphs:
            # rag
            wf_rag = hanlin_rag()
            q = {"question": QUESTION}

            async def direct_rag() -> dict[str, Any]:
                results, text = await work.retrieve(QUESTION)
                out = {"answer": await work.llm(QUESTION, text)}
                if len(results) > 0:
                    out["calc"] = await work.tool(len(results))
                return out

            def direct_rag_sync() -> dict[str, Any]:
                results, text = work_sync.search(QUESTION)
                out = {"answer": work_sync.llm_sync(QUESTION, text)}
                if len(results) > 0:
                    out["calc"] = work_sync.tool_sync(len(results))
                return out

            expected: dict[str, Any] = await direct_rag()
            rag_arms: dict[str, Arm] = {
                "direct": direct_rag,
                "hanlin": lambda: hanlin_once(engine, wf_rag, q),
                "direct (sync)": lambda: sync_arm(direct_rag_sync),
                "hanlin (sync)": lambda: sync_arm(lambda: hanlin_sync(wf_rag, q)),
            }
            if use_lg:
                app_rag = lg_rag(saver, work)
                app_rag_sync = lg_rag(saver_sync, work_sync, sync=True)
                rag_arms["langgraph"] = lambda: lg_once(app_rag, q, "sync")
                rag_arms["langgraph (durability=async)"] = lambda: lg_once(app_rag, q, "async")
                rag_arms["langgraph (sync)"] = lambda: sync_arm(
                    lambda: sync_invoke(app_rag_sync, q)
                )

            def check_rag(name: str, out: Any) -> None:
                got = {"answer": out.get("answer"), "calc": out.get("calc")}
                if got != expected:
                    raise RuntimeError(f"{name}: {got!r} != {expected!r}")

            log(f"overhead: rag, {len(rag_arms)} arms × {runs} runs …")
            measured = await interleave(rag_arms, check_rag, runs)
            result["rag"] = {"arms": measured, "overhead": summarise(measured, 4)}
            result["rag"]["expected output"] = expected
            result["rag"]["commits/run"] = {
                "hanlin": await hanlin_commits(
                    settings, gateway, wf_rag, q, home / "c-h-rag.sqlite"
                )
            }
            if use_lg:
                result["rag"]["commits/run"]["langgraph"] = await lg_commits(
                    lambda sv: lg_rag(sv, work), q, home / "c-l-rag.sqlite"
                )
            log("rag", json.dumps(result["rag"]["overhead"]))
        conn = engine.store._connection()  # type: ignore[attr-defined]
        result["hanlin pragmas"] = {
            p: conn.execute(f"PRAGMA {p}").fetchone()[0] for p in ("journal_mode", "synchronous")
        }
        if saver is not None and saver_sync is not None:
            result["langgraph pragmas"] = {
                p: (await saver.conn.execute_fetchall(f"PRAGMA {p}"))[0][0]
                for p in ("journal_mode", "synchronous")
            }
            result["langgraph (sync) pragmas"] = {
                p: saver_sync.conn.execute(f"PRAGMA {p}").fetchone()[0]
                for p in ("journal_mode", "synchronous")
            }
    finally:
        if lg_ctx is not None:
            await lg_ctx.__aexit__(None, None, None)
        if saver_sync is not None:
            saver_sync.conn.close()
        engine.close()
        engine_sync.close()
        await gateway.aclose()
        gateway_sync.close()
        kb.close()
    return result


def profile_hanlin(home: Path, runs: int, out: Path) -> list[str]:
    """cProfile of ``runs`` Hanlin pass20 runs (event-loop thread): the top functions."""
    import cProfile
    import io
    import pstats

    from hanlin.flows import FlowEngine

    engine = FlowEngine(settings_for(home))
    wf = hanlin_pass(20)

    async def go(n: int) -> None:
        for _ in range(n):
            await hanlin_once(engine, wf, {"x": "p" * 100})

    asyncio.run(go(10))
    prof = cProfile.Profile()
    prof.enable()
    asyncio.run(go(runs))
    prof.disable()
    engine.close()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(30)
    out.write_text(buf.getvalue())
    return buf.getvalue().splitlines()


# --- 2. checkpoint bytes -------------------------------------------------------------------


def table_bytes(path: Path) -> dict[str, int]:
    """Payload bytes of each table, its indexes included (``dbstat``), read by another
    connection (it sees the WAL)."""
    conn = sqlite3.connect(path)
    try:
        owner = dict(conn.execute("SELECT name, tbl_name FROM sqlite_master").fetchall())
        found: Counter[str] = Counter()
        for name, payload in conn.execute("SELECT name, SUM(payload) FROM dbstat GROUP BY name"):
            found[owner.get(name, name)] += int(payload or 0)
        page = int(conn.execute("PRAGMA page_size").fetchone()[0])
    finally:
        conn.close()
    found["(page size)"] = page
    return dict(found)


def wal_bytes(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size if wal.exists() else 0


def wal_commits(path: Path) -> int:
    """Write transactions in the WAL (frames marked as a commit): with ``synchronous=FULL``,
    one fsync each."""
    wal = Path(f"{path}-wal")
    if not wal.exists():
        return 0
    data = wal.read_bytes()
    if len(data) < 32:
        return 0
    page = int.from_bytes(data[8:12], "big")
    found, offset = 0, 32
    while offset + 24 + page <= len(data):
        found += int.from_bytes(data[offset + 4 : offset + 8], "big") != 0
        offset += 24 + page
    return found


def bytes_delta(
    before: dict[str, int],
    after: dict[str, int],
    wal0: int,
    wal1: int,
    commits: int,
    runs: int,
    nodes: int,
) -> dict[str, Any]:
    page = after["(page size)"]
    tables = {
        k: after.get(k, 0) - before.get(k, 0)
        for k in after
        if k != "(page size)" and not k.startswith("sqlite_")
    }
    total = sum(tables.values())
    frames = (wal1 - wal0) / (page + 24)
    return {
        "stored bytes/run": round(total / runs),
        "stored bytes/node": round(total / runs / nodes),
        "by table (bytes/run)": {k: round(v / runs) for k, v in tables.items() if v},
        "WAL bytes written/run": round(frames * page / runs),
        "WAL bytes written/node": round(frames * page / runs / nodes),
        "commits/run": round(commits / runs, 1),
    }


async def checkpoint_bytes(home: Path, runs: int, payload: int, use_lg: bool) -> dict[str, Any]:
    from hanlin.flows import FlowEngine
    from hanlin.flows.sqlite import SqliteFlowStore

    nodes = 20
    x = ("0123456789abcdef" * (payload // 16 + 1))[:payload]
    result: dict[str, Any] = {"payload bytes": payload, "runs": runs, "nodes": nodes}
    for kind in ("constant", "growing"):
        grow = kind == "growing"
        path = home / f"hanlin-{kind}.sqlite"
        engine = FlowEngine(settings_for(home), store=SqliteFlowStore(path))
        engine.store._connection().execute("PRAGMA wal_autocheckpoint=0")  # type: ignore[attr-defined]
        wf = hanlin_pass(nodes, grow=grow)
        b0, w0, c0 = table_bytes(path), wal_bytes(path), wal_commits(path)
        for _ in range(runs):
            out = await hanlin_once(engine, wf, {"x": x})
            want = {"items": [x] * nodes} if grow else {"x": x}
            if out != want:
                raise RuntimeError(f"hanlin {kind}: wrong output")
        c1 = wal_commits(path) - c0
        result[f"hanlin {kind}"] = bytes_delta(
            b0, table_bytes(path), w0, wal_bytes(path), c1, runs, nodes
        )
        engine.close()
        log(f"bytes: hanlin {kind}", json.dumps(result[f"hanlin {kind}"]))
        if not use_lg:
            continue
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        lpath = home / f"langgraph-{kind}.sqlite"
        async with AsyncSqliteSaver.from_conn_string(str(lpath)) as saver:
            await saver.setup()
            await saver.conn.execute("PRAGMA wal_autocheckpoint=0")
            app = lg_pass(saver, nodes, grow=grow)
            b0, w0, c0 = table_bytes(lpath), wal_bytes(lpath), wal_commits(lpath)
            for _ in range(runs):
                inputs: dict[str, Any] = {"x": x, "items": []} if grow else {"x": x}
                out = await lg_once(app, inputs, "sync")
                if (out["items"] if grow else out["x"]) != ([x] * nodes if grow else x):
                    raise RuntimeError(f"langgraph {kind}: wrong output")
            c1 = wal_commits(lpath) - c0
            result[f"langgraph {kind}"] = bytes_delta(
                b0, table_bytes(lpath), w0, wal_bytes(lpath), c1, runs, nodes
            )
        log(f"bytes: langgraph {kind}", json.dumps(result[f"langgraph {kind}"]))
    return result
