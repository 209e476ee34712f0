"""``hanlin eval datasets``: import evaluation datasets from files or rated traces, list and
show the stored versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hanlin.config import load_settings

if TYPE_CHECKING:
    from hanlin.evals.base import EvalStore
    from hanlin.evals.datasets import LoadedDataset

app = typer.Typer(no_args_is_help=True, help="Evaluation datasets, versioned by content.")
out = Console()
err = Console(stderr=True)
#: bad rows listed one by one; the rest are counted
SHOWN_PROBLEMS = 20


def _store() -> EvalStore:
    from hanlin.evals import open_eval_store

    return open_eval_store(load_settings())


def print_problems(loaded: LoadedDataset, console: Console) -> None:
    """The skipped rows (each with its line and reason) and the notes of a dataset read."""
    if loaded.problems:
        console.print(
            f"[yellow]{len(loaded.problems)} rows skipped[/] (the other rows are used):",
            highlight=False,
        )
        for problem in loaded.problems[:SHOWN_PROBLEMS]:
            console.print(f"  {escape(str(problem))}", highlight=False)
        if len(loaded.problems) > SHOWN_PROBLEMS:
            console.print(f"  … and {len(loaded.problems) - SHOWN_PROBLEMS} more", highlight=False)
    for note in loaded.notes:
        console.print(f"[dim]note: {escape(note)}[/]", highlight=False)


@app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="a .jsonl or .csv file, or a BEIR folder")],
    name: Annotated[
        str | None, typer.Option(help="the dataset's name (default: the file's)")
    ] = None,
    split: Annotated[str | None, typer.Option(help="BEIR folders: the qrels split")] = None,
) -> None:
    """Store a dataset file as a new version (identical content: the same version).

    Bad rows are listed and skipped; exits 1 when any was."""
    from hanlin.evals.datasets import load_dataset
    from hanlin.evals.imports import store_loaded

    loaded = load_dataset(path, split=split)
    if loaded.examples:
        imported = store_loaded(_store(), loaded, name)
        info = imported.info
        state = "stored" if imported.created else "unchanged, already stored"
        err.print(f"dataset [bold]{info.ref}[/]: {info.count} examples ({state})")
    print_problems(loaded, err)
    if not loaded.examples:
        err.print("[red]no usable examples: nothing stored[/]")
    if loaded.problems or not loaded.examples:
        raise typer.Exit(1)


@app.command("from-traces")
def from_traces(
    name: Annotated[str, typer.Argument(help="the dataset's name")],
    rated: Annotated[
        str | None, typer.Option(help="up (rated answers become gold) or down")
    ] = None,
    since: Annotated[str | None, typer.Option(help="30m, 2h, 7d or a date")] = None,
    model: Annotated[str | None, typer.Option(help="traces that called this model")] = None,
    kb: Annotated[str | None, typer.Option(help="traces that used this knowledge base")] = None,
    search: Annotated[str | None, typer.Option(help="text in the trace")] = None,
    limit: Annotated[int, typer.Option(help="at most this many examples")] = 500,
) -> None:
    """Build a dataset from traces: their questions, rated-up answers as gold.

    A rated-up refusal marks its question should_refuse; a rated-down answer is kept only as
    metadata (rejected_answer)."""
    from hanlin.cli.traces import parse_since
    from hanlin.errors import InvalidInputError
    from hanlin.evals.from_traces import dataset_from_traces
    from hanlin.evals.imports import store_loaded
    from hanlin.tracing import TraceQuery, open_trace_store

    if rated not in (None, "up", "down"):
        raise InvalidInputError(f"unknown --rated {rated!r}", hint="use up or down")
    query = TraceQuery(
        since_ns=parse_since(since),
        model=model,
        kb=kb,
        rating=None if rated is None else (1 if rated == "up" else -1),
        text=search,
    )
    traces = open_trace_store(load_settings())
    try:
        loaded = dataset_from_traces(traces, query, limit=limit, name=name)
    finally:
        traces.close()
    if not loaded.examples:
        print_problems(loaded, err)
        err.print("[red]no traces with a question matched: nothing stored[/]")
        raise typer.Exit(1)
    info = store_loaded(_store(), loaded, name).info
    gold = sum(bool(e.answers or e.should_refuse) for e in loaded.examples)
    err.print(f"dataset [bold]{info.ref}[/]: {info.count} examples, {gold} with a gold answer")
    print_problems(loaded, err)


@app.command("ls")
def list_datasets() -> None:
    """List stored datasets and their versions."""
    found = _store().datasets()
    if not found:
        err.print("no datasets yet: `hanlin eval datasets import FILE`")
        return
    table = Table()
    for col in ("dataset", "examples", "hash", "source"):
        table.add_column(col)
    for d in found:
        table.add_row(d.ref, str(d.count), d.hash[:12], d.source)
    out.print(table)


@app.command()
def show(
    ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION")],
    examples: Annotated[int, typer.Option(help="list this many examples")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="every example as JSON lines")] = False,
) -> None:
    """A dataset version and its first examples."""
    from hanlin.errors import InvalidInputError

    name, _, version = ref.partition("@")
    if version and not version.isdigit():
        raise InvalidInputError(f"bad dataset version in {ref!r}", hint="use NAME@1, NAME@2 …")
    dataset = _store().dataset(name, int(version) if version else None)
    if as_json:
        for ex in dataset.examples:
            print(json.dumps(ex.model_dump(mode="json", exclude_defaults=True), ensure_ascii=False))
        return
    info = dataset.info
    err.print(f"[bold]{info.ref}[/]: {info.count} examples, hash {info.hash[:12]}, {info.source}")
    table = Table()
    for col in ("id", "question", "gold"):
        table.add_column(col, overflow="fold")
    for ex in dataset.examples[:examples]:
        gold = " | ".join(ex.answers)
        if ex.should_refuse:
            gold = "(should refuse)"
        elif ex.relevant and not gold:
            gold = "docs: " + ", ".join(list(ex.relevant)[:3])
        elif ex.expected_tools is not None and not gold:
            gold = "tools: " + ", ".join(t.name for t in ex.expected_tools)
        table.add_row(ex.id, escape(ex.question), escape(gold))
    out.print(table)
