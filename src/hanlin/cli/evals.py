"""``hanlin eval``: run a dataset against a knowledge base, a model or an agent; list, show,
compare and report runs; gate CI on a metric (``--fail-under``). The datasets commands are in
:mod:`hanlin.cli.eval_datasets`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hanlin.cli import eval_datasets
from hanlin.config import load_settings
from hanlin.errors import InvalidInputError

if TYPE_CHECKING:
    from hanlin.evals.base import EvalStore, RunInfo
    from hanlin.evals.compare import Comparison
    from hanlin.evals.datasets import LoadedDataset

app = typer.Typer(
    no_args_is_help=True,
    help="Evaluations: run datasets against knowledge bases, models and agents; compare runs.",
)
app.add_typer(eval_datasets.app, name="datasets")
out = Console()
err = Console(stderr=True)


def _store() -> EvalStore:
    from hanlin.evals import open_eval_store

    return open_eval_store(load_settings())


@app.command()
def run(
    dataset: Annotated[
        str | None,
        typer.Argument(
            help="a stored dataset (NAME or NAME@VERSION), or a .jsonl/.csv file or "
            "BEIR folder (stored as a dataset version first)"
        ),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option("--target", "-t", help="kb:NAME (RAG answers), agent:NAME, or a model"),
    ] = None,
    metrics: Annotated[
        str | None, typer.Option(help="metrics or groups, comma-separated (default: all)")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="only the first N examples")] = None,
    name: Annotated[str | None, typer.Option(help="a name for the run")] = None,
    judge: Annotated[
        str | None, typer.Option(help="a chat model judging citations and correctness")
    ] = None,
    model: Annotated[str | None, typer.Option(help="kb targets: the generator model")] = None,
    split: Annotated[str | None, typer.Option(help="BEIR folders: the qrels split")] = None,
    dataset_name: Annotated[
        str | None, typer.Option("--dataset-name", help="files: store the dataset as NAME")
    ] = None,
    resume: Annotated[
        str | None, typer.Option(help="finish an interrupted run (its id or name)")
    ] = None,
    fail_under: Annotated[
        list[str] | None,
        typer.Option(help="exit 1 when METRIC's mean is below VALUE: METRIC=VALUE (repeatable)"),
    ] = None,
    fail_over: Annotated[
        list[str] | None,
        typer.Option(help="exit 1 when METRIC is above VALUE, e.g. latency_p95_ms=2000"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the run as JSON")] = False,
) -> None:
    """Run a dataset against a target and score it; resumable, gateable in CI.

    Examples: `hanlin eval run qa.jsonl --target kb:docs`,
    `hanlin eval run ../eval/zh/cmrc2018-trial --target kb:cmrc --limit 100 --fail-under
    recall@10=0.8`, `hanlin eval run --resume r-1a2b3c4d`.
    """
    from hanlin.cli.interrupt import stop_on_interrupt
    from hanlin.cli.progress import progress_bar
    from hanlin.evals.runner import execute, prepare_run, reopen_run, resolve_dataset
    from hanlin.evals.scorer import check_gates, parse_gates
    from hanlin.models.gateway import Gateway

    under, over = parse_gates(fail_under or []), parse_gates(fail_over or [])
    store = _store()
    gateway = Gateway(load_settings())
    try:
        if resume:
            if dataset or target:
                raise InvalidInputError(
                    "--resume continues a run as it was started",
                    hint="leave out DATASET and --target (the run has them)",
                )
            plan = reopen_run(store, resume, gateway)
            err.print(
                f"resuming run [bold]{plan.run.id}[/] ({escape(plan.run.name)}): "
                f"{plan.run.done} of {plan.run.total} examples already stored"
            )
        else:
            if not dataset or not target:
                raise InvalidInputError(
                    "a run needs a DATASET and a --target",
                    hint="e.g. hanlin eval run qa.jsonl --target kb:docs",
                )
            found, loaded = resolve_dataset(store, dataset, name=dataset_name, split=split)
            if loaded is not None:
                _print_loaded(loaded, found.info.ref)
            plan = prepare_run(
                store,
                found,
                target,
                gateway,
                metrics=metrics,
                limit=limit,
                name=name,
                judge=judge,
                model=model,
            )
            err.print(
                f"run [bold]{plan.run.id}[/]: {found.info.ref} on {escape(target)}, "
                f"{plan.run.total} examples"
            )
        _print_plan(plan.metrics, plan.not_run, plan.judge.describe() if plan.judge else None)
        try:
            with (
                stop_on_interrupt(err, "example") as stop,
                progress_bar(f"evaluating {plan.run.target}", err) as progress,
            ):
                result = execute(store, plan, progress=progress, stop=stop.is_set)
        except KeyboardInterrupt:
            err.print(f"finish the run with `hanlin eval run --resume {plan.run.id}`")
            raise
        finally:
            plan.close()
    finally:
        gateway.close()
    if result.status == "interrupted":
        err.print(
            f"[yellow]stopped:[/] {result.done} of {result.total} examples scored and stored. "
            f"Finish with `hanlin eval run --resume {result.id}`.",
            highlight=False,
        )
        raise typer.Exit(130)
    if as_json:
        print(json.dumps(result.model_dump(mode="json"), ensure_ascii=False, indent=2))
    else:
        _print_run(result)
    failed = check_gates(result.aggregates, under, over)
    for line in failed:
        err.print(f"[bold red]gate failed:[/] {escape(line)}", highlight=False)
    if failed:
        raise typer.Exit(1)


def _print_loaded(loaded: LoadedDataset, ref: str) -> None:
    err.print(f"dataset [bold]{ref}[/]: {len(loaded.examples)} examples from {loaded.source}")
    eval_datasets.print_problems(loaded, err)


def _print_plan(metrics: list[str], not_run: dict[str, str], judge: str | None) -> None:
    err.print(f"metrics: {', '.join(metrics)}", highlight=False)
    err.print(f"judge: {judge or 'none'}", highlight=False)
    for metric, why in not_run.items():
        err.print(f"[yellow]not run:[/] {metric} — {why}", highlight=False)


def _print_run(run: RunInfo) -> None:
    agg = run.aggregates
    table = Table(title=f"{run.id}  {run.name}  ({run.dataset} on {run.target}, {run.status})")
    for col in ("metric", "mean", "95% CI", "n"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for name, m in agg.get("metrics", {}).items():
        table.add_row(name, f"{m['mean']:.4f}", f"[{m['lo']:.4f}, {m['hi']:.4f}]", str(m["n"]))
    for label, key in (("latency p50 ms", "latency_p50_ms"), ("latency p95 ms", "latency_p95_ms")):
        if agg.get(key) is not None:
            table.add_row(label, f"{agg[key]:.1f}", "", "")
    table.add_row("cost USD (total)", f"{agg.get('cost_usd_total', 0.0):.6f}", "", "")
    out.print(table)
    for name, why in run.config.get("not_run", {}).items():
        out.print(f"[yellow]not run:[/] {name} — {why}", highlight=False)
    notes = []
    if agg.get("errors"):
        notes.append(f"{agg['errors']} examples failed (scored 0; a resume retries them)")
    if agg.get("unjudged"):
        notes.append(f"{agg['unjudged']} examples unjudged: the judge gave no clear verdict")
    if agg.get("false_refusals") or agg.get("missed_refusals"):
        notes.append(
            f"refusals: {agg['false_refusals']} answerable questions refused, "
            f"{agg['missed_refusals']} unanswerable ones answered"
        )
    for note in notes:
        out.print(f"[yellow]note:[/] {note}", highlight=False)


@app.command("ls")
def list_runs(limit: Annotated[int, typer.Option(help="at most this many")] = 30) -> None:
    """List runs, newest first."""
    runs = _store().runs(limit=limit)
    if not runs:
        err.print("no evaluation runs yet: `hanlin eval run DATASET --target kb:NAME`")
        return
    table = Table()
    for col in ("id", "name", "dataset", "target", "status", "done", "headline"):
        table.add_column(col)
    for r in runs:
        table.add_row(
            r.id, r.name, r.dataset, r.target, r.status, f"{r.done}/{r.total}", _headline(r)
        )
    out.print(table)


def _headline(run: RunInfo) -> str:
    metrics = run.aggregates.get("metrics", {})
    shown = [n for n in ("ndcg@10", "contains", "f1", "tool_call_accuracy") if n in metrics]
    return "  ".join(f"{n} {metrics[n]['mean']:.3f}" for n in shown[:3])


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(help="a run id or name")],
    examples: Annotated[int, typer.Option(help="list this many examples")] = 10,
    as_json: Annotated[
        bool, typer.Option("--json", help="the run and its results as JSON")
    ] = False,
) -> None:
    """A run's aggregates and its first examples."""
    from hanlin.evals.base import find_run

    store = _store()
    found = find_run(store, run_id)
    results = store.results(found.id)
    if as_json:
        data: dict[str, Any] = found.model_dump(mode="json")
        data["results"] = [r.model_dump(mode="json") for r in results]
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return
    _print_run(found)
    table = Table(title=f"first {min(examples, len(results))} of {len(results)} examples")
    for col in ("id", "scores", "output"):
        table.add_column(col, overflow="fold")
    for r in results[:examples]:
        scores = ", ".join(f"{k} {v:.2f}" for k, v in r.scores.items() if v is not None)
        text = f"[red]error:[/] {escape(r.error)}" if r.error else escape(r.output[:300])
        table.add_row(r.example_id, scores, text)
    out.print(table)


@app.command()
def compare(
    run_a: Annotated[str, typer.Argument(help="the baseline run (id or name)")],
    run_b: Annotated[str, typer.Argument(help="the run compared against it")],
    top: Annotated[int, typer.Option(help="list this many changed examples")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="print the comparison as JSON")] = False,
) -> None:
    """Compare two runs: per-metric B − A with paired bootstrap 95% intervals.

    Also lists the examples whose scores changed most."""
    from hanlin.evals.compare import compare_runs

    cmp = compare_runs(_store(), run_a, run_b, top=top)
    if as_json:
        print(json.dumps(_comparison_json(cmp), ensure_ascii=False, indent=2))
        return
    table = Table(title=f"B {cmp.run_b.id} − A {cmp.run_a.id}  ({cmp.paired} paired examples)")
    for col in ("metric", "A", "B", "B − A", "95% CI", "n", ""):
        table.add_column(col, justify="left" if col in ("metric", "") else "right")
    colors = {"better": "green", "worse": "red", "same": "dim"}
    for d in cmp.metrics:
        table.add_row(
            d.name,
            f"{d.a:.4f}",
            f"{d.b:.4f}",
            f"{d.delta:+.4f}",
            f"[{d.lo:+.4f}, {d.hi:+.4f}]",
            str(d.n),
            f"[{colors[d.verdict]}]{d.verdict}[/]",
        )
    out.print(table)
    for note in cmp.notes:
        out.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    if cmp.changed:
        changed = Table(title="examples that changed most")
        for col in ("id", "question", "change", "A", "B"):
            changed.add_column(col, overflow="fold")
        for c in cmp.changed:
            moved = ", ".join(f"{k} {v:+.2f}" for k, v in sorted(c.deltas.items()))
            changed.add_row(
                c.example_id,
                escape(c.question),
                moved,
                escape(c.output_a[:200]),
                escape(c.output_b[:200]),
            )
        out.print(changed)


def _comparison_json(cmp: Comparison) -> dict[str, Any]:
    from hanlin.evals.browse import comparison_json

    return comparison_json(cmp)


@app.command()
def report(
    run_a: Annotated[str, typer.Argument(help="a run (id or name)")],
    run_b: Annotated[str | None, typer.Argument(help="a second run, compared to the first")] = None,
    out_path: Annotated[Path, typer.Option("--out", "-o", help="the HTML file to write")] = Path(
        "report.html"
    ),
) -> None:
    """Write a self-contained HTML report of a run, or of two compared.

    Metrics with 95% intervals, bar and latency plots (inline SVG, no network needed to open
    it), and the examples that changed most."""
    from hanlin.evals.report import render_report

    page = render_report(_store(), run_a, run_b)
    out_path.write_text(page, encoding="utf-8")
    err.print(f"report written to {out_path} ({len(page) // 1024 + 1} KB)")


@app.command("rm")
def remove(run_id: Annotated[str, typer.Argument(help="a run id")]) -> None:
    """Delete a run and its results."""
    _store().delete_run(run_id)
    err.print(f"deleted run {run_id}")
