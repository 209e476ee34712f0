"""The ``hanlin`` command. Each command group lives in its own module."""

from __future__ import annotations

import sys
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from hanlin import __version__
from hanlin.cli import agent, apikeys, chat, compute, jobs, kb, keys, mcp, models, serve, tune
from hanlin.errors import HanlinError

app = typer.Typer(
    name="hanlin",
    help="Hanlin: knowledge bases, hybrid search, RAG and a model gateway — self-hosted.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
kb.app.command("jobs")(jobs.jobs)
kb.app.command("cancel")(jobs.cancel)
app.add_typer(kb.app, name="kb")
app.add_typer(compute.app, name="compute")
app.command("chat")(chat.chat)
app.add_typer(models.app, name="models")
app.add_typer(keys.app, name="keys")
app.add_typer(apikeys.app, name="apikeys")
app.command("serve")(serve.serve)
app.add_typer(agent.app, name="agent")
app.add_typer(mcp.app, name="mcp")
app.add_typer(tune.app, name="tune")
err = Console(stderr=True)


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
