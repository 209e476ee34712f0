"""``hanlin prompt optimize``: search a prompt's instruction and few-shot examples against an
evaluation dataset within a call/cost budget, show every candidate's score and the validated
gain, and save the winner as a new version (the library is :mod:`hanlin.evals.optimize`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hanlin.config import load_settings
from hanlin.errors import InvalidInputError

if TYPE_CHECKING:
    from hanlin.evals.optimize import OptimizeReport

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)
#: who the command line writes as
AUTHOR = "local"


def optimize(
    ref: Annotated[
        str, typer.Argument(metavar="NAME", help="the prompt (NAME, NAME@3 or NAME:staging)")
    ],
    dataset: Annotated[
        str,
        typer.Option(
            help="a stored dataset (NAME or NAME@VERSION), or a .jsonl/.csv file or BEIR folder"
        ),
    ],
    target: Annotated[str, typer.Option(help="the model the prompt is optimised for")],
    budget_calls: Annotated[
        int | None, typer.Option(min=1, help="model calls in all (proposals, scoring, validation)")
    ] = None,
    budget_usd: Annotated[
        float | None, typer.Option(min=0.0, help="stop starting calls once this much is spent")
    ] = None,
    metric: Annotated[str, typer.Option(help="f1, exact_match or contains")] = "f1",
    val_split: Annotated[
        float, typer.Option(min=0.01, max=0.99, help="the share held out for validation")
    ] = 0.3,
    candidates: Annotated[int, typer.Option(min=1, help="prompts to try besides the baseline")] = 8,
    shots: Annotated[str, typer.Option(help="few-shot examples: the most (3) or a range")] = "0..3",
    seed: Annotated[int, typer.Option(help="seeds the splits and the example sets")] = 0,
    proposer: Annotated[
        str | None, typer.Option(help="a chat model proposing instructions (default: --target)")
    ] = None,
    proposals: Annotated[int, typer.Option(min=0, help="instructions to ask it for")] = 3,
    score_size: Annotated[
        int | None, typer.Option(min=1, help="examples each candidate is scored on (max 30)")
    ] = None,
    max_tokens: Annotated[int, typer.Option(min=1, help="per answer")] = 64,
    label: Annotated[
        str | None, typer.Option(help="point this label at the saved version (none by default)")
    ] = None,
    split: Annotated[str | None, typer.Option(help="BEIR folders: the qrels split")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Optimise a prompt's instruction and few-shot examples on a dataset.

    Sets --val-split aside, scores the prompt and up to --candidates variants on the rest —
    instruction rewrites and proposals, then few-shot sets under the best instruction —
    validates the best against the baseline (gain with a bootstrap interval) and saves it as
    a new version. The prompt's variables are filled from the examples: {question},
    {context}, and their metadata fields. Example: `hanlin prompt optimize qa.extract
    --dataset qa.jsonl --target deepseek/deepseek-chat --budget-calls 300 --shots 0..3`."""
    from pydantic import ValidationError

    from hanlin.cli.interrupt import stop_on_interrupt
    from hanlin.cli.progress import progress_bar
    from hanlin.evals import open_eval_store
    from hanlin.evals.optimize import OptimizeOptions, parse_shots
    from hanlin.evals.optimize import optimize as run
    from hanlin.evals.runner import resolve_dataset
    from hanlin.models.gateway import Gateway
    from hanlin.prompts import prompt_library
    from hanlin.prompts.base import parse_ref

    name, version, prompt_label = parse_ref(ref)
    settings = load_settings()
    try:
        options = OptimizeOptions.model_validate(
            {
                "target": target,
                "metric": metric,
                "budget_calls": budget_calls,
                "budget_usd": budget_usd,
                "val_split": val_split,
                "candidates": candidates,
                "shots": parse_shots(shots),
                "seed": seed,
                "proposer": proposer,
                "proposals": proposals,
                "score_size": score_size,
                "max_tokens": max_tokens,
                "version": version,
                "prompt_label": prompt_label,
                "label": label,
            }
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "--" + "-".join(str(p) for p in first["loc"]).replace("_", "-")
        raise InvalidInputError(
            f"{where}: {first['msg']}", hint="see `hanlin prompt optimize --help`"
        ) from None
    store = open_eval_store(settings)
    gateway = Gateway(settings)
    try:
        found, _ = resolve_dataset(store, dataset, split=split)
        with stop_on_interrupt(err, "candidate") as stop, progress_bar("optimising") as progress:
            report = run(
                prompt_library(settings),
                gateway,
                name,
                found.examples,
                options,
                dataset=found.info.ref,
                author=AUTHOR,
                progress=progress,
                stop=stop.is_set,
            )
    finally:
        gateway.close()
        store.close()
    if as_json:
        typer.echo(json.dumps(report.model_dump(), ensure_ascii=False, indent=1))
        return
    show(report)


def _short(text: str, width: int = 60) -> str:
    one = " ".join(text.split())
    return one if len(one) <= width else one[: width - 1] + "…"


def show(report: OptimizeReport) -> None:
    """The report as a table of candidates and a summary."""
    s = report.splits
    out.print(
        f"[bold]{escape(report.prompt)}@{report.baseline_version}[/] on "
        f"{escape(report.dataset)} against {escape(report.target)} ({report.metric}): "
        f"{s['examples']} examples — {s['scoring']} scoring, {s['pool']} in the example pool, "
        f"{s['validation']} validation"
    )
    table = Table(box=None, header_style="bold")
    for col in ("#", "stage", "instruction", "shots", report.metric, ""):
        table.add_column(col, justify="right" if col in ("#", "shots", report.metric) else "left")
    for c in report.candidates:
        score = "–" if c.score is None else f"{c.score:.3f}"
        mark = (
            "★ winner" if c.index == report.winner else ("" if c.status == "scored" else c.status)
        )
        table.add_row(
            str(c.index),
            c.stage,
            escape(_short(c.instruction) or "(none)"),
            str(len(c.shots)),
            score,
            mark,
        )
    out.print(table)
    v = report.validation
    if v.baseline and v.winner and v.gain:
        out.print(
            f"validation ({v.n} examples): baseline {v.baseline.mean:.3f} "
            f"[{v.baseline.low:.3f}, {v.baseline.high:.3f}] → winner {v.winner.mean:.3f} "
            f"[{v.winner.low:.3f}, {v.winner.high:.3f}]; gain {v.gain.mean:+.3f} "
            f"[{v.gain.low:+.3f}, {v.gain.high:+.3f}] (95% paired bootstrap)"
        )
    calls, cost = report.calls, report.cost_usd
    budget = f" of {calls['budget']}" if calls.get("budget") is not None else ""
    spend = f" of ${cost['budget']}" if cost.get("budget") is not None else ""
    out.print(
        f"calls {calls['used']}{budget}, cost ${cost['used'] or 0:.4f}{spend}, "
        f"{report.elapsed_s:.0f} s"
    )
    for note in report.notes:
        err.print(f"[yellow]note:[/] {escape(note)}")
    if report.saved_version is not None:
        what = "saved" if report.saved_created else "identical to"
        out.print(f"{what} {report.prompt}@{report.saved_version}")
        if report.label:
            out.print(f"{report.prompt}:{report.label} → {report.saved_version}")
        else:
            out.print(
                f"try it: hanlin prompt show {report.prompt}@{report.saved_version}; promote it: "
                f"hanlin prompt label {report.prompt} production {report.saved_version}"
            )
