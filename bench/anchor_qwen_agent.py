"""The robustness suite's scenarios against Qwen-Agent (the anchor), side by side with Hanlin.

Same scripted model replies (the fake OpenAI-compatible upstream, native tool calls through
Qwen-Agent's ``use_raw_api``), the same tool functions wrapped as Qwen-Agent ``BaseTool``s
(arguments parsed and checked by Qwen-Agent's own ``_verify_json_format_args``), and the same
budget per scenario; ``FnCallAgent.run_nonstream`` runs in a thread of its own and a run past
the budget is reported as a hang (the thread is abandoned). Qwen-Agent has no per-tool timeout,
no wall-time limit and no async tools: async tools are run with ``asyncio.run``. MCP scenarios
are left out (Qwen-Agent's MCP manager needs its own server config path).

    .bench-venv/bin/pip install qwen-agent
    .bench-venv/bin/python bench/anchor_qwen_agent.py

Writes ``bench/out/anchor_qwen_agent.json`` and ``.md``.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import sys
import tempfile
import threading
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, ClassVar

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from agent_robustness import Context, scenarios, upstream  # noqa: E402
from hanlin.agents.tools.base import AgentTool  # noqa: E402
from robustness_scenarios import PATH, Scenario  # noqa: E402


def qwen_tool(t: AgentTool) -> Any:
    """A Hanlin tool's function as a Qwen-Agent tool (no timeout: Qwen-Agent has none)."""
    from qwen_agent.tools.base import BaseTool

    class Wrapped(BaseTool):
        name = t.name
        description = t.description or t.name
        # Qwen-Agent accepts exactly these three keys (additionalProperties is dropped)
        parameters: ClassVar[dict[str, Any]] = {
            "type": "object",
            "properties": t.parameters.get("properties", {}),
            "required": t.parameters.get("required", []),
        }

        def call(self, params: str | dict[str, Any], **kwargs: Any) -> Any:
            args = self._verify_json_format_args(params)
            if inspect.iscoroutinefunction(t.fn):
                return asyncio.run(t.fn(**args))
            return t.fn(**args)

    return Wrapped()


def run_qwen(s: Scenario, server: Any, tmp: Path) -> dict[str, Any]:
    from qwen_agent.agents import FnCallAgent

    server.app.reset()
    server.app.script(PATH, *s.replies)
    ctx = Context(tmp)
    tools = asyncio.run(_tools(s, ctx))
    llm = {
        "model": "m",
        "model_type": "oai",
        "model_server": server.url,
        "api_key": "sk-fake",
        "generate_cfg": {"use_raw_api": True, "max_retries": 0},
    }
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            agent = FnCallAgent(function_list=[qwen_tool(t) for t in tools], llm=llm)
            msgs = agent.run_nonstream([{"role": "user", "content": "Please help with the task."}])
            box["messages"] = msgs
        except BaseException as exc:
            box["error"] = exc
        box["seconds"] = time.perf_counter() - started

    started = time.perf_counter()
    runner = threading.Thread(target=work, daemon=True, name=f"qwen:{s.name}")
    runner.start()
    runner.join(s.budget)
    ctx.release.set()
    if runner.is_alive():
        return {"status": "hang", "seconds": s.budget, "message": f"no result in {s.budget:g} s"}
    if "error" in box:
        exc = box["error"]
        return {
            "status": "crash",
            "seconds": box["seconds"],
            "message": f"{type(exc).__name__}: {exc}",
        }
    msgs = box["messages"]
    last = msgs[-1] if msgs else {}
    content = last.get("content") if isinstance(last, dict) else getattr(last, "content", "")
    tool_msgs = [
        m for m in msgs if (m.get("role") if isinstance(m, dict) else m.role) == "function"
    ]
    first_tool = tool_msgs[0].get("content") if tool_msgs and isinstance(tool_msgs[0], dict) else ""
    return {
        "status": "returned",
        "seconds": box["seconds"],
        "message": str(content)[:200],
        "first_tool_result": str(first_tool)[:200],
        "llm_calls": len(msgs),
    }


async def _tools(s: Scenario, ctx: Context) -> list[AgentTool]:
    async with AsyncExitStack() as stack:
        return await s.tools(stack, ctx)


def main() -> None:
    hanlin_path = HERE / "out" / "agent_robustness.json"
    hanlin: dict[str, Any] = {}
    if hanlin_path.exists():
        hanlin = {o["name"]: o for o in json.loads(hanlin_path.read_text())["outcomes"]}
    chosen = [s for s in scenarios() if s.group != "mcp"]
    only = os.environ.get("ONLY")
    if only:
        chosen = [s for s in chosen if only in s.name]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="qwen-robust-") as tmp, upstream() as server:
        server.app.record_requests = False
        for s in chosen:
            r = run_qwen(s, server, Path(tmp))
            h = hanlin.get(s.name, {})
            rows.append(
                {
                    "name": s.name,
                    "group": s.group,
                    "budget": s.budget,
                    "qwen": r,
                    "hanlin": {k: h.get(k) for k in ("status", "stop_reason", "seconds")},
                }
            )
            print(
                f"{s.name:36} qwen={r['status']:8} {r['seconds']:6.2f}s  {r['message'][:70]!r}",
                flush=True,
            )
    lines = [
        "| scenario | Qwen-Agent | s | Qwen-Agent's message | Hanlin | s |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        q, h = row["qwen"], row["hanlin"]
        msg = (
            (q.get("first_tool_result") or q["message"]).replace("|", "\\|").replace("\n", " ")[:80]
        )
        hs = f"{h.get('status')} ({h.get('stop_reason')})" if h.get("status") else "—"
        secs = f"{h['seconds']:.2f}" if h.get("seconds") is not None else "—"
        lines.append(
            f"| {row['name']} | {q['status']} | {q['seconds']:.2f} | {msg} | {hs} | {secs} |"
        )
    counts = {
        k: sum(1 for r in rows if r["qwen"]["status"] == k) for k in ("returned", "hang", "crash")
    }
    lines.append("")
    lines.append(
        f"Qwen-Agent: {counts['returned']} returned, {counts['hang']} hangs, "
        f"{counts['crash']} crashes of {len(rows)}"
    )
    md = "\n".join(lines) + "\n"
    print(md)
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "anchor_qwen_agent.json").write_text(json.dumps(rows, indent=1, default=str))
    (out / "anchor_qwen_agent.md").write_text(md)


if __name__ == "__main__":
    main()
