"""``hanlin guard``: see what the guard would mask, flag or block in a text or file."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from hanlin.config import load_settings
from hanlin.errors import InvalidInputError

app = typer.Typer(no_args_is_help=True, help="The guard: personal data, injection, term banks.")
out = Console()


def _read(target: str) -> str:
    if target == "-":
        return sys.stdin.read()
    path = Path(target)
    if path.is_file():
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInputError(
                f"{target} is not UTF-8 text", hint="convert it to UTF-8 or pipe its text in"
            ) from exc
    return target


@app.command()
def scan(
    target: Annotated[str, typer.Argument(help="the text, a file's path, or - for stdin")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    show: Annotated[
        bool, typer.Option("--show", help="also print the masked input and the shown answer")
    ] = False,
    banks: Annotated[
        list[str] | None,
        typer.Option("--bank", help="a term bank (file, folder or 'sample') beside the config's"),
    ] = None,
) -> None:
    """What would be masked and flagged in TEXT|FILE: personal data (as sent to a remote model),
    injection patterns (as retrieved content or a tool result) and term-bank hits (as an
    answer). Values are never printed, only their type, rule and position."""
    from hanlin.guard.report import scan_text

    settings = load_settings().guard
    if banks:
        settings = settings.model_copy(update={"term_banks": [*settings.term_banks, *banks]})
    report = scan_text(_read(target), settings)
    if as_json:
        data = report.to_dict()
        if show:
            data |= {"masked": report.masked, "shown": report.shown}
        out.print_json(json.dumps(data, ensure_ascii=False))
        return
    table = Table("kind", "rule", "span", "action", title=f"{report.chars} characters")
    for item in report.items:
        span = f"{item.start}–{item.end}" if item.start >= 0 else ""
        table.add_row(item.kind, item.rule, span, item.action)
    if report.items:
        out.print(table)
    else:
        out.print("nothing found")
    if report.blocked:
        out.print("[bold red]an answer with this text would be blocked[/]")
    if show:
        out.rule("masked for a remote model")
        out.print(report.masked, markup=False, highlight=False)
        out.rule("shown as an answer")
        out.print(report.shown, markup=False, highlight=False)
