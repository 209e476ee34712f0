"""The workflows `bench/workflows.py` measures, built the same way for Hanlin and for
LangGraph, and the helpers every part of it shares."""

from __future__ import annotations

import asyncio
import contextlib
import operator
import os
import socket
import sqlite3
import sys
import time
import uuid
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


def settings_for(
    home: Path,
    upstream: str | None = None,
    hosts: list[str] | None = None,
    synchronous: str = "full",
) -> Any:
    from hanlin.config import load_settings

    extra: dict[str, Any] = {"tracing": {"enabled": False}}
    if upstream:
        extra["models"] = {"endpoints": {"fake": {"base_url": upstream}}, "retries": 0}
    extra["workflows"] = {} if synchronous == "full" else {"sqlite_synchronous": synchronous}
    if hosts:
        extra["workflows"]["allowed_hosts"] = hosts
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
