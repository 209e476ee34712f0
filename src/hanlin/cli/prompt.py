"""``hanlin prompt``: the prompt registry — list prompts and versions, show one, create a version
from a file, move a label, diff two versions, render one with values (kept in
HANLIN_HOME/prompts.sqlite, or the shared database with database_url), and optimise one on a
dataset (:mod:`hanlin.cli.prompt_optimize`). See docs/prompts.md."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hanlin.cli import prompt_optimize
from hanlin.config import load_settings
from hanlin.errors import InvalidInputError

app = typer.Typer(
    no_args_is_help=True,
    help="Prompts: versions, labels, diffs, the optimiser; RAG and agents read them by label.",
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
VarsOpt = Annotated[list[str] | None, typer.Option("--var", help="see the command's help")]
#: who the command line writes as (the API writes as the caller's key id)
AUTHOR = "local"


def _library() -> Any:
    from hanlin.prompts import prompt_library

    return prompt_library(load_settings())


def _when(at: float) -> str:
    return datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M")


def _dump(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=1))


@app.command("ls")
def ls(
    name: Annotated[str | None, typer.Argument(help="list this prompt's versions")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List prompts with their labels, or one prompt's versions."""
    library = _library()
    if name is None:
        prompts = library.list()
        if as_json:
            _dump([p.model_dump() for p in prompts])
            return
        table = Table(box=None, header_style="bold")
        for col in ("name", "latest", "labels", "updated"):
            table.add_column(col)
        for p in prompts:
            labels = ", ".join(f"{k}→{v}" for k, v in sorted(p.labels.items()))
            table.add_row(p.name, str(p.latest), labels, _when(p.updated_at))
        out.print(table)
        return
    versions = library.versions(name)
    labels = library.labels(name)
    if as_json:
        _dump({"versions": [v.model_dump() for v in versions], "labels": labels})
        return
    table = Table(box=None, header_style="bold")
    for col in ("version", "labels", "author", "created", "message"):
        table.add_column(col)
    for v in reversed(versions):
        at = ", ".join(sorted(k for k, n in labels.items() if n == v.version))
        table.add_row(str(v.version), at, v.author, _when(v.created_at), escape(v.message))
    out.print(table)


@app.command()
def show(
    ref: Annotated[str, typer.Argument(help="NAME (its production version), NAME@3, NAME:staging")],
    as_json: JsonOpt = False,
) -> None:
    """Show a version: its text, variables, config, and the prompt's label history."""
    from hanlin.prompts.base import PRODUCTION, parse_ref

    name, version, label = parse_ref(ref)
    library = _library()
    if version is None and label is None:
        label = PRODUCTION
    found = library.get(name, version=version, label=label)
    labels = library.labels(name)
    history = library.label_history(name)
    if as_json:
        _dump(
            {
                **found.model_dump(),
                "labels": labels,
                "label_history": [m.model_dump() for m in history],
            }
        )
        return
    at = ", ".join(sorted(k for k, n in labels.items() if n == found.version))
    out.print(f"[bold]{found.name}@{found.version}[/]" + (f"  ({at})" if at else ""))
    out.print(f"by {escape(found.author)}, {_when(found.created_at)}, {found.hash[:19]}")
    if found.message:
        out.print(f"message: {escape(found.message)}")
    if found.config is not None:
        out.print("config: " + json.dumps(found.config.model_dump(exclude_none=True)))
    for v in found.variables:
        kind = "required" if v.required else f"optional, default {json.dumps(v.default)}"
        desc = f" — {escape(v.description)}" if v.description else ""
        out.print(f"  {{{v.name}}}: {v.type}, {kind}{desc}")
    out.print("")
    out.print(escape(found.text))
    if history:
        out.print("\n[bold]label history[/]")
        for m in history:
            was = f" (was {m.previous})" if m.previous is not None else ""
            out.print(f"  {_when(m.at)}  {m.label} → {m.version}{was}  by {escape(m.actor)}")


def _parse_var(spec: str) -> Any:
    """``name``, ``name:type`` or ``name:type=default`` → a Variable."""
    from pydantic import ValidationError

    from hanlin.prompts.base import Variable
    from hanlin.prompts.template import parse_value

    head, has_default, default = spec.partition("=")
    name, _, kind = head.partition(":")
    try:
        var = Variable(name=name.strip(), type=(kind.strip() or "str"))  # type: ignore[arg-type]
    except ValidationError as exc:
        raise InvalidInputError(
            f"cannot read --var {spec!r}: {exc.errors()[0]['msg']}",
            hint="write --var name:type or name:type=default; types: str, int, float, list, bool",
        ) from None
    if has_default:
        var = Variable(name=var.name, type=var.type, default=parse_value(var, default))
    return var


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="the prompt's name, e.g. rag.answer.en")],
    file: Annotated[Path, typer.Option("--file", "-f", help="the template text ('-': stdin)")],
    var: VarsOpt = None,
    message: Annotated[str, typer.Option("--message", "-m", help="what changed and why")] = "",
    model: Annotated[str | None, typer.Option(help="the model the version is meant for")] = None,
    temperature: Annotated[float | None, typer.Option(min=0.0, max=2.0)] = None,
    max_tokens: Annotated[int | None, typer.Option(min=1)] = None,
    label: Annotated[str | None, typer.Option(help="then point this label at it")] = None,
) -> None:
    """Create a version from a file.

    {name} fields are its variables: declare a type or default with --var name:int or
    --var tone:str=friendly (undeclared ones keep the previous version's declaration, else are
    required text). A file identical to the latest version creates nothing. The first version
    of a new prompt also gets the label production."""
    from hanlin.prompts.base import ModelConfig, NewVersion

    text = sys.stdin.read() if str(file) == "-" else _read(file)
    config = ModelConfig(model=model, temperature=temperature, max_tokens=max_tokens)
    new = NewVersion(
        text=text.rstrip("\n"),
        variables=[_parse_var(v) for v in var or []],
        config=None if config.is_empty() else config,
        message=message,
    )
    made, created = _library().create(name, new, AUTHOR, label=label)
    if created:
        out.print(f"created {made.name}@{made.version}")
    else:
        out.print(f"identical to {made.name}@{made.version}; nothing created")
    if label is not None:
        out.print(f"{name}:{label} → {made.version}")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(
            f"cannot read {path}: {exc}", hint="give a UTF-8 text file, or - for stdin"
        ) from None


def _move(library: Any, name: str, label: str, version: int) -> None:
    move = library.set_label(name, label, version, AUTHOR)
    was = f" (was {move.previous})" if move.previous is not None else ""
    out.print(f"{name}:{label} → {move.version}{was}")


@app.command()
def label(
    name: Annotated[str, typer.Argument(help="the prompt")],
    label_name: Annotated[str, typer.Argument(metavar="LABEL", help="production, staging …")],
    version: Annotated[int, typer.Argument(min=1, help="the version it points at")],
) -> None:
    """Point a label at a version.

    Every move is kept (show lists them). RAG and agents reading that label use the version
    from their next answer or run, without a restart."""
    _move(_library(), name, label_name, version)


@app.command()
def diff(
    name: Annotated[str, typer.Argument(help="the prompt")],
    old: Annotated[int, typer.Argument(min=1, help="the older version")],
    new: Annotated[int, typer.Argument(min=1, help="the newer version")],
) -> None:
    """A unified diff of two versions: text, variables and config."""
    text = _library().diff(name, old, new)
    if not text:
        err.print(f"{name}@{old} and {name}@{new} hold the same text, variables and config")
        return
    for line in text.splitlines():
        style = {"+": "green", "-": "red", "@": "cyan"}.get(line[:1], "")
        out.print(f"[{style}]{escape(line)}[/]" if style else escape(line))


@app.command()
def render(
    ref: Annotated[str, typer.Argument(help="NAME (its production version), NAME@3, NAME:staging")],
    var: Annotated[
        list[str] | None, typer.Option("--var", help="a value: name=value (repeat)")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Fill a version's variables and print the text.

    A missing, unknown or mistyped variable is an error naming it."""
    from hanlin.prompts.base import parse_ref
    from hanlin.prompts.template import parse_value

    name, version, label_name = parse_ref(ref)
    library = _library()
    if version is None and label_name is None:
        label_name = "production"
    target = library.get(name, version=version, label=label_name)
    declared = {v.name: v for v in target.variables}
    values: dict[str, Any] = {}
    for item in var or []:
        key, eq, raw = item.partition("=")
        if not eq:
            raise InvalidInputError(f"cannot read --var {item!r}", hint="write --var name=value")
        key = key.strip()
        values[key] = parse_value(declared[key], raw) if key in declared else raw
    found, text = library.render(name, values, version=target.version)
    if as_json:
        _dump({"name": found.name, "version": found.version, "text": text})
        return
    typer.echo(text)


app.command("optimize")(prompt_optimize.optimize)
