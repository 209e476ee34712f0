"""Issue 18's workflow measurements, Hanlin's engine (``hanlin.flows``) side by side with
LangGraph and its SQLite checkpointer, in one run on one machine.

    .bench-venv/bin/python bench/workflows.py [--out bench/out] [--runs 400]
    .bench-venv/bin/python bench/workflows.py --parts overhead,bytes --runs 50     # quick

LangGraph never becomes a Hanlin dependency: it lives in the bench environment, which has
Hanlin installed editable beside it (see bench/README.md)::

    python3 -m venv .bench-venv
    .bench-venv/bin/pip install -e . 'langgraph==1.2.*' 'langgraph-checkpoint-sqlite==3.1.*' \
        matplotlib psutil

Without LangGraph (e.g. in ``.venv``) the script says so, prints that command, and measures
Hanlin alone.

Both frameworks checkpoint durably to SQLite in the same temporary directory: Hanlin's run store
(WAL, ``synchronous=FULL``, one transaction per node) and LangGraph's ``AsyncSqliteSaver`` (WAL,
SQLite's default ``synchronous=FULL``) with ``durability="sync"`` — each step's checkpoint is
written before the next step starts, the guarantee Hanlin gives. LangGraph's default
``durability="async"`` (the checkpoint written while the next step runs) is measured as a
second LangGraph arm. Each framework is measured through both of its APIs: async
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
import contextlib
import json
import operator
import os
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Annotated, Any, TypedDict

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
INSTALL = (
    "python3 -m venv .bench-venv && .bench-venv/bin/pip install -e . "
    "'langgraph==1.2.*' 'langgraph-checkpoint-sqlite==3.1.*' matplotlib psutil"
)
MODEL = "fake/m"
SYSTEM = "Answer from the context."
QUESTION = "Where is oolong tea grown?"


def have_langgraph() -> bool:
    try:
        import langgraph.checkpoint.sqlite.aio
        import langgraph.graph  # noqa: F401
    except ImportError:
        return False
    return True


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": sys.version.split()[0], "sqlite": sqlite3.sqlite_version}
    for name in ("hanlin", "langgraph", "langgraph-checkpoint", "langgraph-checkpoint-sqlite"):
        with contextlib.suppress(PackageNotFoundError):
            found[name] = version(name)
    return found


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    return 0.0


def rss_mb() -> float:
    return _status_mb("VmRSS:")


def hwm_mb() -> float:
    """This process's peak RSS (``ru_maxrss`` would carry the parent's over ``exec``)."""
    return _status_mb("VmHWM:")


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def pct(xs: list[float], p: float) -> float:
    """The p-th percentile of seconds, in ms."""
    s = sorted(xs)
    k = (len(s) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return round((s[lo] + (s[hi] - s[lo]) * (k - lo)) * 1000, 3)


def log(*parts: Any) -> None:
    print(f"[{time.strftime('%H:%M:%S')}]", *parts, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings_for(home: Path, upstream: str | None = None, hosts: list[str] | None = None) -> Any:
    from hanlin.config import load_settings

    extra: dict[str, Any] = {"tracing": {"enabled": False}}
    if upstream:
        extra["models"] = {"endpoints": {"fake": {"base_url": upstream}}, "retries": 0}
    if hosts:
        extra["workflows"] = {"allowed_hosts": hosts}
    return load_settings(home=home, **extra)


# --- the graphs ----------------------------------------------------------------------------


def hanlin_pass(n: int = 20, *, grow: bool = False) -> Any:
    """start → n pass-through nodes → end. ``grow``: each node outputs one item (the state
    holds them all) and the end node returns the list; else each passes ``x`` on."""
    from hanlin.flows import Workflow

    nodes: list[dict[str, Any]] = [{"id": "start", "type": "start", "inputs": {"x": "string"}}]
    prev = "start"
    for i in range(1, n + 1):
        value = "{{start.x}}" if grow else f"{{{{{prev}.x}}}}"
        key = "item" if grow else "x"
        nodes.append({"id": f"n{i}", "type": "variable_assigner", "variables": {key: value}})
        prev = f"n{i}"
    if grow:
        out = {"items": [f"{{{{n{i}.item}}}}" for i in range(1, n + 1)]}
    else:
        out = {"x": f"{{{{{prev}.x}}}}"}
    nodes.append({"id": "out", "type": "end", "outputs": out})
    return Workflow.from_dict({"name": f"pass{n}{'-grow' if grow else ''}", "nodes": nodes})


def hanlin_rag() -> Any:
    from hanlin.flows import Workflow

    return Workflow.from_dict(
        {
            "name": "rag",
            "nodes": [
                {"id": "start", "type": "start", "inputs": {"question": "string"}},
                {
                    "id": "retrieve",
                    "type": "knowledge_retrieval",
                    "kbs": ["bench"],
                    "query": "{{start.question}}",
                    "k": 3,
                    "mode": "keyword",
                },
                {
                    "id": "llm",
                    "type": "llm",
                    "model": MODEL,
                    "system": SYSTEM,
                    "prompt": "Context:\n{{retrieve.text}}\n\nQuestion: {{start.question}}",
                    "stream": False,
                },
                {
                    "id": "check",
                    "type": "if_else",
                    "cases": [{"id": "found", "when": "retrieve.count > 0"}],
                },
                {
                    "id": "calc",
                    "type": "tool",
                    "tool": "calculator",
                    "arguments": {"expression": "{{retrieve.count}} * 2"},
                },
                {
                    "id": "out",
                    "type": "end",
                    "outputs": {"answer": "{{llm.text}}", "calc": "{{calc.result}}"},
                },
            ],
            "edges": [
                "start -> retrieve",
                "retrieve -> llm",
                "llm -> check",
                "check.found -> calc",
                "calc -> out",
            ],
        }
    )


def hanlin_approve() -> Any:
    from hanlin.flows import Workflow

    return Workflow.from_dict(
        {
            "name": "approve",
            "nodes": [
                {"id": "start", "type": "start", "inputs": {"n": "integer"}},
                {
                    "id": "ask",
                    "type": "human_input",
                    "kind": "approve",
                    "prompt": "Approve {{start.n}}?",
                },
                {
                    "id": "out",
                    "type": "end",
                    "outputs": {"n": "{{start.n}}", "approved": "{{ask.approved}}"},
                },
            ],
        }
    )


class PassState(TypedDict):
    x: str


class GrowState(TypedDict):
    x: str
    items: Annotated[list[str], operator.add]


class RagState(TypedDict, total=False):
    question: str
    results: list[dict[str, Any]]
    text: str
    count: int
    answer: str
    calc: str


class ApproveState(TypedDict, total=False):
    n: int
    approved: bool
    out: dict[str, Any]


async def _pass_node(state: dict[str, Any]) -> dict[str, Any]:
    return {"x": state["x"]}


async def _grow_node(state: dict[str, Any]) -> dict[str, Any]:
    return {"items": [state["x"]]}


def _pass_node_sync(state: dict[str, Any]) -> dict[str, Any]:
    return {"x": state["x"]}


def lg_pass(saver: Any, n: int = 20, *, grow: bool = False, sync: bool = False) -> Any:
    from langgraph.graph import END, START, StateGraph

    g = StateGraph(GrowState if grow else PassState)
    prev = START
    node = _pass_node_sync if sync else _pass_node
    for i in range(1, n + 1):
        g.add_node(f"n{i}", _grow_node if grow else node)
        g.add_edge(prev, f"n{i}")
        prev = f"n{i}"
    g.add_edge(prev, END)
    return g.compile(checkpointer=saver)


class Work:
    """The rag graph's work, shared by the ``direct`` and LangGraph arms; Hanlin's nodes do the
    same (with their own open knowledge base and the same Gateway). The tool is built once, as
    a LangGraph user would; Hanlin's tool node builds it on every execution."""

    def __init__(self, kb: Any, gateway: Any, settings: Any) -> None:
        from hanlin.agents.tool_kinds import TOOLS, BuildContext, ToolSpec

        self.kb, self.gateway = kb, gateway
        spec = ToolSpec(name="calculator", options={})
        build = BuildContext(
            agent="workflow-calc", settings=settings, workspace=None, long_term=None
        )
        self.calculator = TOOLS.lookup("calculator").build(spec, build)[0]

    def search(self, query: str) -> tuple[list[dict[str, Any]], str]:
        found = []
        for hit in self.kb.search(query, k=3, mode="keyword"):
            c = hit.chunk
            found.append(
                {
                    "kb": "bench",
                    "text": c.text,
                    "source": c.source,
                    "title": c.title,
                    "score": round(hit.score, 6),
                    "page": c.page,
                }
            )
        text = "\n\n".join(f"[{i}] {r['text']}" for i, r in enumerate(found, 1))
        return found, text

    def messages(self, question: str, text: str) -> list[Any]:
        from hanlin.models.types import Message

        return [
            Message.system(SYSTEM),
            Message(role="user", content=f"Context:\n{text}\n\nQuestion: {question}"),
        ]

    # async: the knowledge base on a worker thread, the model and tool awaited
    async def retrieve(self, query: str) -> tuple[list[dict[str, Any]], str]:
        return await asyncio.to_thread(self.search, query)

    async def llm(self, question: str, text: str) -> str:
        from hanlin.models.types import ChatOptions

        response = await self.gateway.achat(self.messages(question, text), MODEL, ChatOptions())
        return str(response.text)

    async def tool(self, count: int) -> str:
        result = await self.calculator.run({"expression": f"{count} * 2"})
        return str(result.content)

    # sync: the model and the tool on the gateway's event-loop thread (``Gateway.chat``)
    def llm_sync(self, question: str, text: str) -> str:
        from hanlin.models.types import ChatOptions

        messages = self.messages(question, text)
        return str(self.gateway.chat(messages, MODEL, options=ChatOptions()).text)

    def tool_sync(self, count: int) -> str:
        result = self.gateway.run_sync(self.calculator.run({"expression": f"{count} * 2"}))
        return str(result.content)


def lg_rag(saver: Any, work: Work, *, sync: bool = False) -> Any:
    from langgraph.graph import END, START, StateGraph

    async def retrieve(state: dict[str, Any]) -> dict[str, Any]:
        results, text = await work.retrieve(state["question"])
        return {"results": results, "text": text, "count": len(results)}

    async def llm(state: dict[str, Any]) -> dict[str, Any]:
        return {"answer": await work.llm(state["question"], state["text"])}

    async def calc(state: dict[str, Any]) -> dict[str, Any]:
        return {"calc": await work.tool(state["count"])}

    def retrieve_sync(state: dict[str, Any]) -> dict[str, Any]:
        results, text = work.search(state["question"])
        return {"results": results, "text": text, "count": len(results)}

    def llm_sync(state: dict[str, Any]) -> dict[str, Any]:
        return {"answer": work.llm_sync(state["question"], state["text"])}

    def calc_sync(state: dict[str, Any]) -> dict[str, Any]:
        return {"calc": work.tool_sync(state["count"])}

    def route(state: dict[str, Any]) -> str:
        return "calc" if state["count"] > 0 else END

    g = StateGraph(RagState)
    g.add_node("retrieve", retrieve_sync if sync else retrieve)
    g.add_node("llm", llm_sync if sync else llm)
    g.add_node("calc", calc_sync if sync else calc)
    g.add_edge(START, "retrieve")
    g.add_edge("retrieve", "llm")
    g.add_conditional_edges("llm", route, ["calc", END])
    g.add_edge("calc", END)
    return g.compile(checkpointer=saver)


def lg_approve(saver: Any) -> Any:
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import interrupt

    async def begin(state: dict[str, Any]) -> dict[str, Any]:
        return {"n": int(state["n"])}

    async def ask(state: dict[str, Any]) -> dict[str, Any]:
        answer = interrupt({"question": f"Approve {state['n']}?"})
        return {"approved": bool(answer["approved"])}

    async def out(state: dict[str, Any]) -> dict[str, Any]:
        return {"out": {"n": state["n"], "approved": state["approved"]}}

    g = StateGraph(ApproveState)
    for name, fn in (("begin", begin), ("ask", ask), ("out", out)):
        g.add_node(name, fn)
    g.add_edge(START, "begin")
    g.add_edge("begin", "ask")
    g.add_edge("ask", "out")
    g.add_edge("out", END)
    return g.compile(checkpointer=saver)


async def hanlin_drive(engine: Any, run_id: str) -> Any:
    last = None
    async for event in engine.astream(run_id):
        last = event
    return last


async def hanlin_once(engine: Any, wf: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    run = engine.start(wf, inputs)
    last = await hanlin_drive(engine, run.id)
    if getattr(last, "status", None) != "done":
        raise RuntimeError(f"hanlin run {run.id} ended {last!r}")
    return dict(last.outputs)


async def lg_once(app: Any, inputs: dict[str, Any], durability: str) -> dict[str, Any]:
    config = {"configurable": {"thread_id": uuid.uuid4().hex}}
    return dict(await app.ainvoke(inputs, config, durability=durability))


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


async def overhead(home: Path, upstream: str, runs: int, use_lg: bool) -> dict[str, Any]:
    """Both graphs, through each framework's async API (on this loop) and its sync API (Hanlin:
    ``FlowEngine.run``, which drives the run on the gateway's loop thread; LangGraph:
    ``invoke`` with the sync ``SqliteSaver``), each against its own direct floor. The sync
    arms use a second Gateway and engine: an async HTTP client belongs to one event loop."""
    from hanlin.flows import FlowEngine
    from hanlin.knowledge.kb import KnowledgeBase
    from hanlin.models.gateway import Gateway

    settings = settings_for(home, upstream)
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
            rag_arms["langgraph (sync)"] = lambda: sync_arm(lambda: sync_invoke(app_rag_sync, q))

        def check_rag(name: str, out: Any) -> None:
            got = {"answer": out.get("answer"), "calc": out.get("calc")}
            if got != expected:
                raise RuntimeError(f"{name}: {got!r} != {expected!r}")

        log(f"overhead: rag, {len(rag_arms)} arms × {runs} runs …")
        measured = await interleave(rag_arms, check_rag, runs)
        result["rag"] = {"arms": measured, "overhead": summarise(measured, 4)}
        result["rag"]["expected output"] = expected
        result["rag"]["commits/run"] = {
            "hanlin": await hanlin_commits(settings, gateway, wf_rag, q, home / "c-h-rag.sqlite")
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
    cmd = [sys.executable, __file__, "--worker", framework, "--dir", str(wdir)]
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
                overhead(home, f"http://127.0.0.1:{port}/v1", args.runs, use_lg)
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
