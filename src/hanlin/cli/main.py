"""The ``hanlin`` command. Each command group lives in its own module, imported only when run.

Importing every group at start made ``hanlin --help`` take over a second: the agents, the model
gateway, the knowledge stack and their dependencies loaded for any command. The top level keeps
each command's name and one-line help here and imports its module when that command is invoked
(or its own ``--help`` is asked for); tests/test_cli_startup.py holds it to that.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, NamedTuple

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

from hanlin import __version__
from hanlin.errors import HanlinError


def _chat() -> TyperCommand:
    from hanlin.cli.chat import chat

    return _single("chat", chat)


def _serve() -> TyperCommand:
    from hanlin.cli.serve import serve

    return _single("serve", serve)


def _kb() -> TyperGroup:
    from hanlin.cli import db, jobs, kb

    if not any(info.name == "jobs" for info in kb.app.registered_commands):
        kb.app.command("jobs")(jobs.jobs)
        kb.app.command("cancel")(jobs.cancel)
        kb.app.command("copy")(db.copy)
    return typer.main.get_group(kb.app)


def _compute() -> TyperGroup:
    from hanlin.cli import compute

    return typer.main.get_group(compute.app)


def _models() -> TyperGroup:
    from hanlin.cli import models

    return typer.main.get_group(models.app)


def _keys() -> TyperGroup:
    from hanlin.cli import keys

    return typer.main.get_group(keys.app)


def _worker() -> TyperCommand:
    from hanlin.cli import worker

    return _single("worker", worker.worker)


def _db() -> TyperGroup:
    from hanlin.cli import db

    return typer.main.get_group(db.app)


def _apikeys() -> TyperGroup:
    from hanlin.cli import apikeys

    return typer.main.get_group(apikeys.app)


def _agent() -> TyperGroup:
    from hanlin.cli import agent

    return typer.main.get_group(agent.app)


def _mcp() -> TyperGroup:
    from hanlin.cli import mcp

    return typer.main.get_group(mcp.app)


def _tune() -> TyperGroup:
    from hanlin.cli import tune

    return typer.main.get_group(tune.app)


def _traces() -> TyperGroup:
    from hanlin.cli import traces

    return typer.main.get_group(traces.app)


def _eval() -> TyperGroup:
    from hanlin.cli import evals

    return typer.main.get_group(evals.app)


def _prompt() -> TyperGroup:
    from hanlin.cli import prompt

    return typer.main.get_group(prompt.app)


def _workflow() -> TyperGroup:
    from hanlin.cli import workflow

    return typer.main.get_group(workflow.app)


def _guard() -> TyperGroup:
    from hanlin.cli import guard

    return typer.main.get_group(guard.app)


def _single(name: str, function: Callable[..., Any]) -> TyperCommand:
    one = typer.Typer(add_completion=False)
    one.command(name)(function)
    command = typer.main.get_command(one)
    assert isinstance(command, TyperCommand)
    return command


class LazyCommand(NamedTuple):
    """A command as the top-level ``--help`` lists it, and how to load the real one."""

    help: str
    load: Callable[[], TyperCommand | TyperGroup]


# In the order `hanlin --help` lists them (`version` comes last), each with the first paragraph
# or first sentence of its own help; tests/test_cli_startup.py checks that the two agree.
LAZY_COMMANDS: dict[str, LazyCommand] = {
    "chat": LazyCommand(
        "Ask a model. Streams the answer; piped stdin is appended to the prompt as context.", _chat
    ),
    "serve": LazyCommand(
        "Serve the API and the web UI. Without configuration: http://127.0.0.1:8321, no keys.",
        _serve,
    ),
    "kb": LazyCommand("Knowledge bases: ingest folders, keep them in sync, hybrid search.", _kb),
    "compute": LazyCommand(
        "Compute planner: training FLOPs, GPU-days and cost; memory for fine-tuning and serving.",
        _compute,
    ),
    "models": LazyCommand("Models: list, inspect, and alias them.", _models),
    "keys": LazyCommand(
        "Provider API keys, stored 0600 in HANLIN_HOME or read from environment variables.", _keys
    ),
    "apikeys": LazyCommand("API keys for `hanlin serve` and `hanlin mcp serve --http`.", _apikeys),
    "db": LazyCommand("The shared database (database_url).", _db),
    "worker": LazyCommand(
        "Run ingest jobs (uploads, URLs, syncs, re-embeds) from the shared database's queue.",
        _worker,
    ),
    "agent": LazyCommand("Agents: tools, planning, memory and MCP — run a goal or chat.", _agent),
    "mcp": LazyCommand(
        "MCP: serve Hanlin to MCP clients; list configured MCP servers and their tools.", _mcp
    ),
    "tune": LazyCommand(
        "Fine-tuning: check data; run CPT / SFT / LoRA / DPO; evaluate, export, deploy.", _tune
    ),
    "traces": LazyCommand("Traces of model calls, searches, answers and tool calls.", _traces),
    "guard": LazyCommand("The guard: personal data, injection, term banks.", _guard),
    "prompt": LazyCommand(
        "Prompts: versions, labels, diffs, the optimiser; RAG and agents read them by label.",
        _prompt,
    ),
    "eval": LazyCommand(
        "Evaluations: run datasets against knowledge bases, models and agents; compare runs.",
        _eval,
    ),
    "workflow": LazyCommand(
        "Workflows: typed node graphs, run durably; resume, answer, rerun.", _workflow
    ),
}

_LISTING = "hanlin.cli.listing"


class _Placeholder(TyperCommand):
    """What a lazy command is until it runs: a name and a line of help."""


class LazyGroup(TyperGroup):
    """The top-level group: lists every command from :data:`LAZY_COMMANDS` without importing
    it, and swaps a placeholder for the real command the first time that one is looked up to run.
    """

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        eager = dict(self.commands)
        self.commands = {
            name: _Placeholder(name, help=lazy.help) for name, lazy in LAZY_COMMANDS.items()
        }
        self.commands.update(eager)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = self.commands.get(cmd_name)
        if isinstance(command, _Placeholder) and not ctx.meta.get(_LISTING):
            command = LAZY_COMMANDS[cmd_name].load()
            command.name = cmd_name
            self.commands[cmd_name] = command
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        ctx.meta[_LISTING] = True
        try:
            super().format_help(ctx, formatter)
        finally:
            del ctx.meta[_LISTING]


app = typer.Typer(
    name="hanlin",
    help="Hanlin: knowledge bases, hybrid search, RAG and a model gateway — self-hosted.",
    cls=LazyGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err = Console(stderr=True)


@app.callback()
def _root() -> None:
    # With `version` its only registered command, Typer would make the app that one command;
    # a callback keeps it a group (of the lazy commands too).
    pass


@app.command()
def version() -> None:
    """Print Hanlin's version."""
    print(__version__)


def main(argv: list[str] | None = None) -> Any:
    """Entry point: runs the CLI and turns Hanlin errors into a message and an exit code."""
    try:
        rc = app(args=argv, standalone_mode=False)
        if isinstance(rc, int) and rc:
            sys.exit(rc)
        return rc
    except HanlinError as exc:
        err.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False)
        if exc.hint:
            err.print(f"  [yellow]→ {escape(exc.hint)}[/]", highlight=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(1)
    except Exception as exc:  # usage errors: typer >= 0.20 vendors click as typer._click
        import click

        show = getattr(exc, "show", None)
        if isinstance(exc, click.ClickException | typer.TyperException) and callable(show):
            show()
            sys.exit(getattr(exc, "exit_code", 2))
        raise
