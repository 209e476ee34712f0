"""Hostile tool scenarios against Hanlin's agent loop: every run must end, within its limit, with
a clear result (a stop reason and a message) — no hang, no crash.

Each scenario scripts the model (the local fake OpenAI-compatible upstream replays tool-call
streams, answers, faults), gives the agent its tools (Python tools, or an MCP server started as
a subprocess from the ``mcp`` SDK) and limits, runs ``Agent.arun`` on an event loop of its own in
a thread of its own, and checks the outcome:

- ``ok``: the run returned within the scenario's budget with an expected stop reason, a
  non-empty message, and the scenario's own check passed;
- ``hang``: it did not return within the budget; ``crash``: an exception escaped the loop;
- ``wrong``: it returned, but not as expected (the check says what).

Threads still running 1 s after the run (a sync tool Python cannot stop) are counted.

    .venv/bin/python bench/agent_robustness.py            # all scenarios, table + JSON
    .venv/bin/python bench/agent_robustness.py -k mcp     # those whose name contains "mcp"

Writes ``bench/out/agent_robustness.json`` and ``.md``. ``tests/agents/test_robustness.py``
runs the same scenarios under pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from hanlin.agents.events import AgentResult  # noqa: E402
from hanlin.agents.loop import Agent  # noqa: E402
from hanlin.config import load_settings  # noqa: E402
from hanlin.models.gateway import Gateway  # noqa: E402
from hanlin.testing.upstream import UpstreamServer  # noqa: E402
from robustness_scenarios import PATH, Scenario, one_call, scenarios  # noqa: E402
from robustness_tools import Context  # noqa: E402

MODEL = "fake/m"
__all__ = ["Context", "Outcome", "Scenario", "one_call", "run_scenario", "scenarios", "upstream"]


@dataclass
class Outcome:
    name: str
    group: str
    status: str  # ok | hang | crash | wrong
    stop_reason: str | None
    message: str
    seconds: float
    steps: int
    lingering_threads: int
    problem: str | None = None


# --- running ---------------------------------------------------------------------------------


def message_of(result: AgentResult) -> str:
    """The clear message a user sees: the error, else the answer, else the last tool result."""
    if result.error:
        return result.error
    if result.text:
        return result.text
    if result.tool_results:
        return f"last tool result: {result.tool_results[-1].content}"
    return ""


_SSL: Any = None


def gateway_for(url: str, prices: bool, http: Any = None) -> Gateway:
    cfg: dict[str, Any] = {
        "endpoints": {"fake": {"base_url": url}},
        "retries": 0,
        "backoff_base": 0.01,
        "backoff_max": 0.05,
        "cooldown": 0.0,
    }
    if prices:  # $1,000 per 1M tokens: 29 tokens a step cost $0.029
        cfg["prices"] = {MODEL: {"input": 1000.0, "output": 1000.0}}
    return Gateway(load_settings(models=cfg), http_client=http)


async def _run(s: Scenario, server: UpstreamServer, ctx: Context) -> AgentResult:
    import ssl

    import httpx

    global _SSL
    if _SSL is None:  # loading the CA bundle costs ~0.2 s a client; the fake is plain HTTP
        _SSL = ssl.create_default_context()
    http = httpx.AsyncClient(verify=_SSL)
    gateway = gateway_for(server.url, s.prices, http)
    try:
        async with AsyncExitStack() as stack:
            tools = await s.tools(stack, ctx)
            agent = Agent(gateway, MODEL, tools, limits=s.limits, max_repairs=s.max_repairs)
            return await agent.arun("Please help with the task.")
    finally:
        await gateway.aclose()
        await http.aclose()


def run_scenario(s: Scenario, server: UpstreamServer, tmp: Path) -> Outcome:
    """Run one scenario in a thread with its own event loop; never blocks past the budget."""
    server.app.reset()
    server.app.script(PATH, *s.replies)
    ctx = Context(tmp)
    box: dict[str, Any] = {}
    before = set(threading.enumerate())

    def work() -> None:
        loop = asyncio.new_event_loop()
        try:
            box["result"] = loop.run_until_complete(_run(s, server, ctx))
        except BaseException as exc:
            box["error"] = exc
        finally:
            box["seconds"] = time.perf_counter() - started
            left = asyncio.all_tasks(loop)  # abandoned work (a tool that ignores cancellation)
            for task in left:
                task.cancel()
            if left:  # a bounded chance to wind down; then the loop is closed regardless
                loop.run_until_complete(asyncio.wait(left, timeout=0.5))
            loop.close()

    started = time.perf_counter()
    runner = threading.Thread(target=work, daemon=True, name=f"scenario:{s.name}")
    runner.start()
    runner.join(s.budget)
    seconds = box.get("seconds", time.perf_counter() - started)
    time.sleep(0.1)
    lingering = len([t for t in threading.enumerate() if t not in before and t.is_alive()])
    ctx.release.set()  # let deliberately hung sync tools go, after the count
    if runner.is_alive():
        return Outcome(
            s.name,
            s.group,
            "hang",
            None,
            "",
            seconds,
            0,
            lingering,
            f"no result within {s.budget:g} s",
        )
    if "error" in box:
        exc = box["error"]
        return Outcome(
            s.name,
            s.group,
            "crash",
            None,
            f"{type(exc).__name__}: {exc}",
            seconds,
            0,
            lingering,
            "an exception escaped Agent.arun",
        )
    result: AgentResult = box["result"]
    message = message_of(result)
    problem = None
    if result.stop_reason not in s.expect:
        problem = f"stop reason {result.stop_reason!r}, expected one of {s.expect}"
    elif not message.strip():
        problem = "no message"
    elif s.check is not None:
        try:
            s.check(result)
        except AssertionError as exc:
            problem = str(exc)
    status = "ok" if problem is None else "wrong"
    return Outcome(
        s.name,
        s.group,
        status,
        result.stop_reason,
        message,
        seconds,
        result.steps,
        lingering,
        problem,
    )


@contextmanager
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer() as server:
        yield server


# --- the report ------------------------------------------------------------------------------


def table(outcomes: list[Outcome]) -> str:
    lines = [
        "| # | scenario | group | result | stop reason | seconds | steps | lingering threads |"
        " message |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for i, o in enumerate(outcomes, 1):
        msg = (o.problem + " — " if o.problem else "") + o.message
        msg = msg.replace("|", "\\|").replace("\n", " ")
        msg = msg[:110] + "…" if len(msg) > 110 else msg
        lines.append(
            f"| {i} | {o.name} | {o.group} | {o.status} | {o.stop_reason or '—'} | "
            f"{o.seconds:.2f} | {o.steps} | {o.lingering_threads} | {msg} |"
        )
    counts = {
        k: sum(1 for o in outcomes if o.status == k) for k in ("ok", "hang", "crash", "wrong")
    }
    total = sum(o.seconds for o in outcomes)
    lines.append("")
    lines.append(
        f"{len(outcomes)} scenarios: {counts['ok']} ok, {counts['hang']} hangs, "
        f"{counts['crash']} crashes, {counts['wrong']} wrong; {total:.1f} s in all"
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", default="", help="only scenarios whose name contains this")
    args = parser.parse_args()
    chosen = [s for s in scenarios() if args.k in s.name]
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="hanlin-robust-") as tmp:
        os.environ.setdefault("HANLIN_HOME", tmp)
        with upstream() as server:
            server.app.record_requests = False
            columns = (TextColumn("{task.description:40}"), BarColumn(), MofNCompleteColumn())
            with Progress(*columns) as progress:
                task = progress.add_task("scenarios", total=len(chosen))
                for s in chosen:
                    progress.update(task, description=s.name)
                    outcomes.append(run_scenario(s, server, Path(tmp)))
                    progress.advance(task)
    md = table(outcomes)
    print(md)
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    report = {
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "load_average": list(os.getloadavg()),
        "outcomes": [o.__dict__ for o in outcomes],
    }
    (out / "agent_robustness.json").write_text(json.dumps(report, indent=1, default=str))
    (out / "agent_robustness.md").write_text(md)


if __name__ == "__main__":
    main()
