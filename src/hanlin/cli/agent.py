"""``hanlin agent``: run an agent on a goal or chat with one, watching every step.

The model's text goes to stdout as it streams; tool calls, results, plans and the footer go to
stderr. A tool with side effects asks ``Allow …? [y/N]`` on the terminal (``--yes`` approves
all; without a terminal such calls are denied). ``--json`` prints one JSON event per line.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.prompt import Confirm

from hanlin.agents.event_json import event_dict
from hanlin.agents.events import (
    ApprovalRequest,
    FinalEvent,
    NoticeEvent,
    StepEvent,
    TextEvent,
    ToolCallEvent,
    ToolResultEvent,
)
from hanlin.cli.chat import money, read_prompt, stdin_state
from hanlin.config import load_settings
from hanlin.models.gateway import Gateway

app = typer.Typer(help="Agents: tools, planning, memory and MCP — run a goal or chat.")
err = Console(stderr=True, highlight=False)

AgentOpt = Annotated[
    str,
    typer.Option("--agent", "-a", help="agent name (HANLIN_HOME/agents/NAME.yaml) or YAML file"),
]
ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="override the agent's model")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="approve every tool call")]
JsonOpt = Annotated[bool, typer.Option("--json", help="one JSON event per line on stdout")]
PREVIEW = 400


class Approver:
    """Answers approval requests: ``--yes``, else the terminal, else no."""

    def __init__(self, yes: bool, interactive: bool) -> None:
        self.yes = yes
        self.interactive = interactive
        self.answers: dict[str, bool] = {}

    async def ask(self, request: ApprovalRequest) -> None:
        """Decide now (the run waits for the answer on its next step)."""
        if self.yes:
            self.answers[request.id] = True
            return
        if not self.interactive:
            err.print(
                f"[yellow]denied {escape(request.tool)}: it needs approval and there is no "
                "terminal to ask (use --yes to allow)[/]"
            )
            self.answers[request.id] = False
            return
        effects = ", ".join(sorted(request.side_effects))
        args = json.dumps(request.arguments, ensure_ascii=False)
        question = f"Allow [bold]{escape(request.tool)}[/] ({effects}) with {escape(args)}?"
        self.answers[request.id] = await asyncio.to_thread(
            Confirm.ask, question, console=err, default=False
        )

    def __call__(self, request: ApprovalRequest) -> bool:
        return self.answers.pop(request.id, False)


def _open(ref: str, model: str | None, gateway: Gateway, approver: Approver, session: str) -> Any:
    from hanlin.agents.spec import load_agent_spec, open_agent

    spec = load_agent_spec(ref)
    if model:
        spec = spec.model_copy(update={"model": model})
    return open_agent(spec, gateway, approval_callback=approver, session=session)


def _show(event: Any, as_json: bool) -> None:
    """Print one event for a person (or as one JSON line)."""
    if as_json:
        print(json.dumps(event_dict(event), ensure_ascii=False), flush=True)
        return
    if isinstance(event, TextEvent):
        sys.stdout.write(event.text)
        sys.stdout.flush()
    elif isinstance(event, NoticeEvent):
        err.print(f"[yellow]note:[/] {escape(event.text)}", soft_wrap=True)
    elif isinstance(event, ToolCallEvent):
        err.print(f"\n[cyan]→ {escape(event.name)}[/]([dim]{escape(event.arguments)}[/])")
    elif isinstance(event, ToolResultEvent):
        text = event.content if len(event.content) <= PREVIEW else event.content[:PREVIEW] + "…"
        colour = "red" if event.is_error else "green"
        err.print(
            f"[{colour}]← {escape(event.name)}[/] {escape(text)} [dim]{event.seconds:.2f}s[/]"
        )
    elif isinstance(event, StepEvent | ApprovalRequest | FinalEvent):
        return
    else:  # planner and memory events: say what happened in one line
        data = event_dict(event)
        kind = data.pop("type")
        detail = data.get("title") or data.get("summary") or data.get("status") or ""
        if kind == "plan" and isinstance(data.get("subtasks"), list):
            detail = "; ".join(
                f"{s.get('id')}. {s.get('title')}" for s in data["subtasks"] if isinstance(s, dict)
            )
        err.print(f"\n[magenta]{escape(kind)}[/] {escape(str(detail))}")


def _footer(final: FinalEvent) -> None:
    if final.text and not final.text.endswith("\n"):
        sys.stdout.write("\n")
    usage = final.usage
    colour = "red" if final.stop_reason == "error" else "dim"
    err.print(
        f"[{colour}]{final.stop_reason} · {final.steps} steps · {usage.prompt_tokens} in / "
        f"{usage.completion_tokens} out tokens · ${money(final.cost_usd)}[/]"
    )
    if final.error:
        err.print(f"[red]{escape(final.error)}[/]")


async def _stream_events(
    events: AsyncIterator[Any], approver: Approver, as_json: bool
) -> FinalEvent:
    final: FinalEvent | None = None
    async for event in events:
        _show(event, as_json)
        if isinstance(event, ApprovalRequest):
            await approver.ask(event)
        elif isinstance(event, FinalEvent):
            final = event
    assert final is not None
    return final


@app.command()
def run(
    goal: Annotated[str | None, typer.Argument(help="the goal; '-' or none reads stdin")] = None,
    agent: AgentOpt = "assistant",
    model: ModelOpt = None,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Run an agent on one goal, streaming its steps; exit 1 if the run ended in an error."""
    task = read_prompt(goal)
    gateway = Gateway(load_settings())
    approver = Approver(yes, stdin_state() == "tty" and sys.stderr.isatty())

    async def main() -> FinalEvent:
        try:
            async with _open(agent, model, gateway, approver, "cli") as opened:
                final = await _stream_events(opened.astream(task), approver, as_json)
        finally:
            await gateway.aclose()
        return final

    final = asyncio.run(main())
    if not as_json:
        _footer(final)
    if final.stop_reason == "error":
        raise typer.Exit(1)


@app.command()
def chat(
    agent: AgentOpt = "assistant",
    model: ModelOpt = None,
    yes: YesOpt = False,
) -> None:
    """Chat with an agent in the terminal; an empty line or Ctrl-D ends it. Earlier turns are
    summarized past the agent's conversation-memory budget."""
    from hanlin.agents.memory import AgentChat, ConversationMemory
    from hanlin.agents.spec import load_agent_spec, open_agent

    gateway = Gateway(load_settings())
    approver = Approver(yes, sys.stdin.isatty())
    spec = load_agent_spec(agent)
    if model:
        spec = spec.model_copy(update={"model": model})

    async def main() -> None:
        try:
            async with open_agent(spec, gateway, approval_callback=approver, session="chat") as a:
                memory = spec.conversation_memory(gateway) or ConversationMemory(
                    gateway, spec.model, max_tokens=1_000_000
                )
                talk = AgentChat(a, memory)
                while True:
                    try:
                        line = await asyncio.to_thread(err.input, "[bold]you>[/] ")
                    except EOFError:
                        break
                    if not line.strip():
                        break
                    final = await _stream_events(talk.astream(line), approver, False)
                    _footer(final)
        finally:
            await gateway.aclose()

    asyncio.run(main())


@app.command("ls")
def list_agents() -> None:
    """The agents you can run: the built-in ones and HANLIN_HOME/agents/*.yaml."""
    from rich.table import Table

    from hanlin.agents.spec import list_agent_specs

    table = Table("name", "mode", "model", "tools", "description")
    for info in list_agent_specs():
        if info.error:
            table.add_row(info.name, "", "", "", f"[red]does not load: {escape(info.error)}[/]")
            continue
        model = info.model or "(default)"
        table.add_row(info.name, info.mode, model, ", ".join(info.tools), info.description)
    Console().print(table)


@app.command()
def show(agent: Annotated[str, typer.Argument(help="agent name or YAML file")]) -> None:
    """One agent's definition, as JSON."""
    from hanlin.agents.spec import load_agent_spec

    spec = load_agent_spec(agent)
    print(json.dumps(spec.model_dump(mode="json"), ensure_ascii=False, indent=2))
