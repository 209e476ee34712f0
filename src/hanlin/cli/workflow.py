"""``hanlin workflow``: list, check, run and resume workflows; answer their human-input forms.

``run`` shows each node as it starts and finishes (a live table on a terminal, one line per
event otherwise; ``--json``: one JSON event per line). A human-input node asks on the terminal;
without one the run pauses, and ``hanlin workflow answer RUN --data '{...}'`` resumes it.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.prompt import Confirm, Prompt
from rich.table import Table

from hanlin.config import load_settings
from hanlin.errors import InvalidInputError
from hanlin.flows import NODES, FlowEngine, RunRecord, Workflow, list_workflows, load_workflow
from hanlin.flows.base import PendingInput
from hanlin.flows.events import (
    FlowEvent,
    NodeFinishedEvent,
    NodeRetryEvent,
    NodeStartedEvent,
    NodeTextEvent,
    RunPausedEvent,
    event_dict,
)

app = typer.Typer(help="Workflows: typed node graphs, run durably; resume, answer, rerun.")
err = Console(stderr=True, highlight=False)
out = Console(highlight=False)

JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]
InputOpt = Annotated[
    list[str] | None, typer.Option("--input", "-i", help="an input, NAME=VALUE (repeatable)")
]
_STYLE = {
    "done": "green",
    "failed": "red",
    "skipped": "dim",
    "replayed": "cyan",
    "running": "yellow",
}


def _inputs(pairs: list[str] | None, data: str | None) -> dict[str, Any]:
    values: dict[str, Any] = json.loads(data) if data else {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep:
            raise InvalidInputError(f"--input {pair!r} has no '='", hint="write --input NAME=VALUE")
        try:
            values[name] = json.loads(value)
        except ValueError:
            values[name] = value
    return values


@app.command("ls")
def ls(as_json: JsonOpt = False) -> None:
    """List the workflows in HANLIN_HOME/workflows/."""
    settings = load_settings()
    rows: list[dict[str, Any]] = []
    for path in list_workflows(settings):
        try:
            wf = load_workflow(str(path), settings, check_resources=False)
            schedules = [t.schedule for t in wf.spec.triggers]
            rows.append(
                {
                    "name": path.stem,
                    "description": wf.spec.description,
                    "ok": True,
                    "schedules": schedules,
                }
            )
        except Exception as exc:
            rows.append({"name": path.stem, "description": str(exc).split("\n")[0], "ok": False})
    if as_json:
        print(json.dumps(rows, ensure_ascii=False))
        return
    if not rows:
        err.print(f"no workflows in {settings.home / 'workflows'} (put NAME.yaml there)")
    for row in rows:
        mark = "" if row["ok"] else "[red]invalid:[/] "
        when = "".join(f"  [cyan]⏱ {escape(c)}[/]" for c in row.get("schedules") or [])
        out.print(f"[bold]{row['name']}[/]  {mark}{escape(row['description'])}{when}")


@app.command()
def nodes() -> None:
    """List the node types (built-in and plugins)."""
    for name in NODES.names():
        out.print(f"[bold]{name}[/]  {escape(NODES.lookup(name).summary)}")


@app.command()
def show(workflow: str, yaml_out: Annotated[bool, typer.Option("--yaml")] = False) -> None:
    """Show a workflow's nodes (type, outputs) and edges."""
    wf = load_workflow(workflow, load_settings(), check_resources=False)
    if yaml_out:
        print(wf.to_yaml(), end="")
        return
    table = Table(title=f"{wf.name}: {wf.spec.description}", title_justify="left")
    for column in ("node", "type", "outputs", "next"):
        table.add_column(column)
    for n in wf.graph.order:
        node = wf.graph.nodes[n]
        outputs = wf.graph.types[n].outputs(wf.graph.configs[n])
        shown = ", ".join(f"{k}: {v}" for k, v in outputs.items()) if outputs else "(dynamic)"
        nxt = ", ".join(
            str(e).split("-> ")[0].strip() + "→" + e.target for e in wf.graph.edges if e.source == n
        )
        table.add_row(n, node.type, shown, nxt)
    out.print(table)
    if wf.spec.triggers:
        _show_triggers(wf)


def _show_triggers(wf: Workflow) -> None:
    import time

    from hanlin.flows.schedule import schedule_rows
    from hanlin.flows.store import open_flow_store

    store = open_flow_store(load_settings())
    try:
        rows = schedule_rows(wf, store, time.time())
    finally:
        store.close()
    table = Table(title="triggers", title_justify="left")
    for column in ("trigger", "schedule", "timezone", "next fire", "last fire", "inputs"):
        table.add_column(column)
    for row in rows:
        last = row["last_fire"] and f"{row['last_fire']} ({row['last_outcome']})"
        table.add_row(
            row["trigger"],
            row["schedule"],
            row["timezone"],
            row["next_fire"],
            last or "-",
            escape(json.dumps(row["inputs"], ensure_ascii=False)),
        )
    out.print(table)


@app.command("import")
def import_(
    source: Annotated[str, typer.Argument(help="a Dify DSL export (app.yml)")],
    output: Annotated[
        str | None,
        typer.Option(
            "--output", "-o", help="where to write (default: workflows/NAME.yaml; - prints)"
        ),
    ] = None,
    name: Annotated[str | None, typer.Option(help="the workflow's name")] = None,
    model: Annotated[str | None, typer.Option(help="use this model in every model node")] = None,
    kb: Annotated[
        list[str] | None, typer.Option(help="DATASET_ID=KB: a Dify dataset as a knowledge base")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="overwrite an existing file")] = False,
) -> None:
    """Convert a Dify workflow or chatflow export into a Hanlin workflow; every node or field
    that could not be carried over is named with the reason."""
    from pathlib import Path

    from hanlin.flows.definition import workflows_dir
    from hanlin.flows.dify import import_dify

    settings = load_settings()
    kbs = dict(pair.split("=", 1) for pair in kb or [] if "=" in pair)
    path = Path(source)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem).strip("-._") or "dify-app"
    result = import_dify(path.read_text("utf-8"), name=name, model=model, kbs=kbs)
    if name is None and result.definition["name"] == "dify-app":
        result.definition["name"] = stem
    text = result.to_yaml()
    if output == "-":
        print(text, end="")
    else:
        target = (
            Path(output)
            if output
            else workflows_dir(settings) / f"{result.definition['name']}.yaml"
        )
        if target.exists() and not force:
            raise InvalidInputError(f"{target} exists", hint="pass --force to overwrite it, or -o")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, "utf-8")
        err.print(
            f"wrote {target} ({len(result.definition['nodes'])} nodes, "
            f"from a Dify {result.mode} app)"
        )
    for note in result.unconverted:
        err.print(f"[red]not converted[/] {escape(note.line())}")
    for note in result.notes:
        err.print(f"[yellow]note[/] {escape(note.line())}")
    try:
        Workflow.from_dict(result.definition)
    except InvalidInputError as exc:
        err.print(f"[red]not valid yet[/] (fix the nodes above): {escape(exc.message)}")
        return
    err.print("[green]valid[/]")


@app.command()
def validate(workflow: str) -> None:
    """Check a workflow (name or YAML file) without running it."""
    wf = load_workflow(workflow, load_settings())
    out.print(f"[green]ok[/] {wf.name}: {len(wf.graph.order)} nodes, {len(wf.graph.edges)} edges")


class _View:
    """Prints a run's events: a live table on a terminal, lines otherwise, or JSON."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.rows: dict[str, tuple[str, str, str]] = {}
        self.live: Live | None = None
        if not as_json and err.is_terminal:
            self.live = Live(self._table(), console=err, refresh_per_second=8, transient=False)
            self.live.start()

    def _table(self) -> Table:
        table = Table(show_header=True, box=None)
        for column in ("node", "type", "status", "detail"):
            table.add_column(column)
        for node, (kind, status, detail) in self.rows.items():
            table.add_row(node, kind, f"[{_STYLE.get(status, 'white')}]{status}[/]", detail)
        return table

    def __call__(self, event: FlowEvent) -> None:
        if self.as_json:
            print(json.dumps(event_dict(event), ensure_ascii=False, default=str), flush=True)
            return
        if isinstance(event, NodeStartedEvent):
            row = (
                event.node_type,
                "running",
                f"attempt {event.attempt}" if event.attempt > 1 else "",
            )
        elif isinstance(event, NodeRetryEvent):
            row = (
                self.rows.get(event.node, ("", "", ""))[0],
                "running",
                f"retry in {event.wait_s:g} s: {event.error[:80]}",
            )
        elif isinstance(event, NodeFinishedEvent):
            detail = event.error or ", ".join(
                f"{k}={json.dumps(v, ensure_ascii=False, default=str)[:40]}"
                for k, v in event.outputs.items()
            )
            row = (event.node_type, event.status, f"{event.seconds:.2f}s {detail}"[:120])
        elif isinstance(event, NodeTextEvent):
            return
        else:
            return
        self.rows[event.node] = row
        if self.live is not None:
            self.live.update(self._table())
        else:
            err.print(
                f"{escape(event.node)}  {row[0]}  "
                f"[{_STYLE.get(row[1], 'white')}]{row[1]}[/]  {escape(row[2])}"
            )

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None


def _ask(pending: PendingInput) -> dict[str, Any]:
    err.print(f"[bold]{escape(pending.node)}[/] asks: {escape(pending.prompt)}")
    if pending.kind == "approve":
        approved = Confirm.ask("approve?", console=err)
        comment = Prompt.ask("comment", default="", console=err)
        return {"approved": approved, "comment": comment}
    if pending.kind == "edit":
        return {"text": Prompt.ask("text", default=str(pending.value or ""), console=err)}
    if pending.kind == "choose":
        choices = [str(o) for o in pending.options or []]
        picked = Prompt.ask("choose", choices=choices, console=err)
        return {"choice": (pending.options or [])[choices.index(picked)]}
    value = json.loads(Prompt.ask(f"answer (JSON matching {pending.schema_})", console=err))
    return dict(value)


def _drive(engine: FlowEngine, run_id: str, as_json: bool) -> RunRecord:
    interactive = sys.stdin.isatty() and not as_json
    while True:
        view = _View(as_json)
        paused: PendingInput | None = None
        try:
            for event in engine.stream(run_id):
                view(event)
                if isinstance(event, RunPausedEvent):
                    paused = event.pending
        finally:
            view.stop()
        run = engine.store.get_run(run_id)
        if paused is None or not interactive:
            break
        engine.answer(run_id, _ask(paused))
    _report(run, as_json)
    return run


def _report(run: RunRecord, as_json: bool) -> None:
    if as_json:
        return
    if run.status == "done":
        answer = (run.outputs or {}).get("answer")
        out.print(
            answer
            if isinstance(answer, str)
            else json.dumps(run.outputs, ensure_ascii=False, indent=2)
        )
        err.print(f"[green]done[/] run {run.id}")
    elif run.status == "paused" and run.pending is not None:
        err.print(
            f"[yellow]paused[/] run {run.id} at {run.pending.node}: {escape(run.pending.prompt)}"
        )
        err.print(
            f"  → answer it: hanlin workflow answer {run.id} "
            f"--data '{json.dumps(_example(run.pending))}'"
        )
    else:
        err.print(f"[red]{run.status}[/] run {run.id}: {escape(run.error or '')}")
        err.print(f"  → fix the cause, then `hanlin workflow resume {run.id}`")
    if run.status not in ("done", "paused"):
        raise typer.Exit(1)


def _example(pending: PendingInput) -> dict[str, Any]:
    examples: dict[str, dict[str, Any]] = {
        "approve": {"approved": True},
        "edit": {"text": "..."},
        "choose": {"choice": (pending.options or ["..."])[0]},
    }
    return examples.get(pending.kind, {})


@app.command()
def run(
    workflow: str,
    inputs: InputOpt = None,
    data: Annotated[
        str | None, typer.Option("--inputs", help="all inputs as a JSON object")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a workflow (name or YAML file), streaming its node events."""
    settings = load_settings()
    wf = load_workflow(workflow, settings)
    engine = FlowEngine(settings)
    try:
        started = engine.start(wf, _inputs(inputs, data))
        if not as_json:
            err.print(f"run {started.id}")
        _drive(engine, started.id, as_json)
    finally:
        engine.close()


@app.command()
def resume(run_id: str, as_json: JsonOpt = False) -> None:
    """Continue a run from its last checkpoint (after a crash, a failure or a pause)."""
    engine = FlowEngine(load_settings())
    try:
        _drive(engine, run_id, as_json)
    finally:
        engine.close()


@app.command()
def answer(
    run_id: str,
    data: Annotated[str, typer.Option("--data", help="the answer, a JSON object")],
    as_json: JsonOpt = False,
) -> None:
    """Answer a paused run's form and resume it."""
    engine = FlowEngine(load_settings())
    try:
        try:
            value = json.loads(data)
        except ValueError as exc:
            raise InvalidInputError(
                f"--data is not JSON: {exc}", hint="pass a JSON object"
            ) from None
        engine.answer(run_id, value)
        _drive(engine, run_id, as_json)
    finally:
        engine.close()


@app.command()
def cancel(run_id: str) -> None:
    """Cancel a run (a running one stops at its next checkpoint)."""
    engine = FlowEngine(load_settings())
    try:
        engine.cancel(run_id)
        err.print(f"cancelled {run_id}")
    finally:
        engine.close()


@app.command()
def rerun(
    run_id: str,
    from_node: Annotated[str, typer.Option("--from", help="the node to run again from")],
    inputs: InputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run again from a node, keeping the results before it (inputs may be edited)."""
    engine = FlowEngine(load_settings())
    try:
        new = engine.rerun(run_id, from_node, _inputs(inputs, None) if inputs else None)
        if not as_json:
            err.print(f"run {new.id} (rerun of {run_id} from {from_node})")
        _drive(engine, new.id, as_json)
    finally:
        engine.close()


@app.command()
def runs(
    workflow: Annotated[str | None, typer.Argument(help="only this workflow's runs")] = None,
    status: Annotated[str | None, typer.Option(help="only runs in this status")] = None,
    limit: int = 20,
    as_json: JsonOpt = False,
) -> None:
    """List runs, newest first."""
    engine = FlowEngine(load_settings())
    try:
        found = engine.store.list_runs(workflow, status, limit)
    finally:
        engine.close()
    if as_json:
        print(
            json.dumps([r.model_dump(exclude={"definition", "state"}) for r in found], default=str)
        )
        return
    table = Table(box=None)
    for column in ("run", "workflow", "status", "steps", "detail"):
        table.add_column(column)
    for r in found:
        detail = r.error or (r.pending.prompt if r.pending else "")
        table.add_row(
            r.id,
            r.workflow,
            f"[{_STYLE.get(r.status, 'white')}]{r.status}[/]",
            str(r.steps),
            escape(detail[:80]),
        )
    out.print(table)


@app.command()
def history(
    run_id: str,
    step: Annotated[int | None, typer.Option(help="show the variables after this step")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every step of a run in order; with --step, the variables after that step."""
    engine = FlowEngine(load_settings())
    try:
        if step is not None:
            print(
                json.dumps(engine.state_at(run_id, step), ensure_ascii=False, indent=2, default=str)
            )
            return
        steps = engine.history(run_id)
    finally:
        engine.close()
    if as_json:
        print(json.dumps([s.model_dump() for s in steps], ensure_ascii=False, default=str))
        return
    for s in steps:
        detail = s.error or json.dumps(s.outputs, ensure_ascii=False, default=str)[:100]
        out.print(
            f"{s.seq:>3} {s.node}  {s.type}  "
            f"[{_STYLE.get(s.status, 'white')}]{s.status}[/]  {escape(detail)}"
        )
