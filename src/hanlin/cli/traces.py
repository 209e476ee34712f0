"""``hanlin traces``: list, show, rate and export the traces of model calls, searches and
answers (kept in HANLIN_HOME/traces.sqlite, or the shared database with database_url)."""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from hanlin.config import load_settings
from hanlin.errors import InvalidInputError, NotFoundError

app = typer.Typer(
    no_args_is_help=True, help="Traces of model calls, searches, answers and tool calls."
)
out = Console()
err = Console(stderr=True)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str | None) -> int | None:
    """``30m``, ``2h``, ``7d`` ago, or an ISO date/time (UTC when no zone) → Unix ns."""
    if not text:
        return None
    m = re.fullmatch(r"(\d+)\s*([smhdw])", text.strip())
    if m:
        return int((time.time() - int(m.group(1)) * _UNITS[m.group(2)]) * 1e9)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(
            f"cannot read --since {text!r}", hint="use 30m, 2h, 7d or a date like 2026-12-01"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1e9)


def _store() -> Any:
    from hanlin.tracing import open_trace_store

    return open_trace_store(load_settings())


def _query(
    since: str | None,
    model: str | None,
    kb: str | None,
    key: str | None,
    status: str | None,
    rated: str | None,
    search: str | None,
    limit: int,
) -> Any:
    from hanlin.tracing import TraceQuery

    if status not in (None, "ok", "error"):
        raise InvalidInputError(f"unknown --status {status!r}", hint="use ok or error")
    if rated not in (None, "up", "down"):
        raise InvalidInputError(f"unknown --rated {rated!r}", hint="use up or down")
    return TraceQuery(
        since_ns=parse_since(since),
        model=model,
        kb=kb,
        key_id=key,
        status=status,  # type: ignore[arg-type]
        rating=None if rated is None else (1 if rated == "up" else -1),
        text=search,
        limit=limit,
    )


Since = Annotated[str | None, typer.Option(help="30m, 2h, 7d, or a date (UTC)")]
ModelOpt = Annotated[str | None, typer.Option(help="only traces that called this model")]
KbOpt = Annotated[str | None, typer.Option(help="only traces that searched this knowledge base")]
KeyOpt = Annotated[str | None, typer.Option(help="only traces of this API key id")]
StatusOpt = Annotated[str | None, typer.Option(help="ok or error")]
RatedOpt = Annotated[str | None, typer.Option(help="up or down")]
SearchOpt = Annotated[str | None, typer.Option(help="text in a span's name or attributes")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


def _when(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9).strftime("%m-%d %H:%M:%S")


@app.command("ls")
def ls(
    since: Since = None,
    model: ModelOpt = None,
    kb: KbOpt = None,
    key: KeyOpt = None,
    status: StatusOpt = None,
    rated: RatedOpt = None,
    search: SearchOpt = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List traces, newest first."""
    q = _query(since, model, kb, key, status, rated, search, limit)
    traces = _store().list_traces(q)
    if as_json:
        typer.echo(json.dumps([asdict(t) for t in traces], ensure_ascii=False, indent=1))
        return
    if not traces:
        err.print("no traces match (tracing.enabled is on by default; make a call first)")
        return
    table = Table(box=None, header_style="bold")
    for col in ("when", "trace", "name", "ms", "spans", "model", "kb", "tokens", "cost $", ""):
        table.add_column(col, justify="right" if col in ("ms", "spans", "cost $") else "left")
    for t in traces:
        mark = "[red]error[/red]" if t.status == "error" else ""
        mark += {1: " 👍", -1: " 👎"}.get(t.rating or 0, "")
        table.add_row(
            _when(t.start_ns),
            t.trace_id[:12],
            t.name,
            f"{t.duration_ms:,.0f}",
            str(t.spans),
            t.model or "",
            t.kb or "",
            f"{t.input_tokens}/{t.output_tokens}",
            f"{t.cost_usd:.4f}" if t.cost_usd else "",
            mark.strip(),
        )
    out.print(table)


def resolve(store: Any, trace_id: str) -> str:
    """A full trace id from a prefix of at least 6 hex digits (as `ls` shows 12)."""
    from hanlin.tracing import TraceQuery

    tid = trace_id.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{6,32}", tid):
        raise InvalidInputError(
            f"{trace_id!r} is not a trace id", hint="copy one from `hanlin traces ls`"
        )
    if len(tid) == 32:
        return tid
    q = TraceQuery(limit=1000)
    for _ in range(20):
        page = store.list_traces(q)
        for t in page:
            if t.trace_id.startswith(tid):
                return str(t.trace_id)
        if len(page) < q.limit:
            break
        q.before = (page[-1].start_ns, page[-1].trace_id)
    raise NotFoundError(
        f"no trace starts with {tid}", hint="list them with `hanlin traces ls --since 7d`"
    )


_SHOWN = (
    "gen_ai.provider.name",
    "hanlin.deployment",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "hanlin.cost.usd",
    "hanlin.search.mode",
    "hanlin.search.results",
    "hanlin.rag.answer_mode",
    "hanlin.rag.citations",
    "gen_ai.tool.name",
)
_CONTENT = (
    "hanlin.question",
    "hanlin.query",
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
)


@app.command()
def show(
    trace_id: Annotated[str, typer.Argument(help="a trace id or its first digits")],
    content: Annotated[bool, typer.Option(help="show recorded inputs and outputs")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Draw a trace as a tree of spans with their timings."""
    store = _store()
    spans = store.get_trace(resolve(store, trace_id))
    if as_json:
        typer.echo(json.dumps([asdict(s) for s in spans], ensure_ascii=False, indent=1))
        return
    by_parent: dict[str | None, list[Any]] = {}
    ids = {s.span_id for s in spans}
    for s in spans:
        by_parent.setdefault(s.parent_id if s.parent_id in ids else None, []).append(s)
    start = min(s.start_ns for s in spans)

    def label(s: Any) -> str:
        bits = [f"[bold]{s.name}[/bold]", f"{s.duration_ms:,.1f} ms"]
        bits.append(f"[dim]+{(s.start_ns - start) / 1e6:,.1f}[/dim]")
        if s.status == "error":
            bits.append(f"[red]error: {s.error or ''}[/red]")
        extra = [f"{k.split('.')[-1]}={s.attributes[k]}" for k in _SHOWN if k in s.attributes]
        lines = ["  ".join(bits)] + ([f"[dim]{' '.join(extra)}[/dim]"] if extra else [])
        if content:
            for k in _CONTENT:
                if k in s.attributes:
                    text = str(s.attributes[k])
                    text = text if len(text) <= 300 else text[:300] + "…"
                    lines.append(f"[cyan]{k.split('.', 1)[1]}[/cyan]: {text}")
        return "\n".join(lines)

    def grow(node: Tree, parent: str | None) -> None:
        for s in by_parent.get(parent, []):
            grow(node.add(label(s), highlight=False), s.span_id)

    roots = by_parent.get(None, [])
    tree = Tree(f"trace {spans[0].trace_id}", highlight=False)
    for r in roots:
        grow(tree.add(label(r), highlight=False), r.span_id)
    out.print(tree)


@app.command()
def rate(
    trace_id: Annotated[str, typer.Argument(help="a trace id or its first digits")],
    rating: Annotated[str, typer.Argument(help="up, down or clear")],
    comment: Annotated[str | None, typer.Option(help="why")] = None,
) -> None:
    """Rate a trace's answer: thumbs up or down, with a comment."""
    values: dict[str, Literal[1, -1] | None] = {"up": 1, "down": -1, "clear": None}
    if rating not in values:
        raise InvalidInputError(f"unknown rating {rating!r}", hint="use up, down or clear")
    store = _store()
    tid = resolve(store, trace_id)
    store.rate(tid, values[rating], comment)
    err.print(f"rated {tid[:12]}: {rating}", highlight=False)


@app.command()
def export(
    since: Since = None,
    model: ModelOpt = None,
    kb: KbOpt = None,
    key: KeyOpt = None,
    status: StatusOpt = None,
    rated: RatedOpt = None,
    search: SearchOpt = None,
    limit: Annotated[int, typer.Option(min=1)] = 100_000,
    fmt: Annotated[str, typer.Option("--format", help="jsonl (spans) or tune (chat data)")] = (
        "jsonl"
    ),
    output: Annotated[Path | None, typer.Option("-o", help="file (default: stdout)")] = None,
) -> None:
    """Export traces: every span as JSON lines, or (--format tune) each model call's
    messages and answer as a chat dataset that `hanlin tune data check` accepts."""
    if fmt not in ("jsonl", "tune"):
        raise InvalidInputError(f"unknown --format {fmt!r}", hint="use jsonl or tune")
    store = _store()
    q = _query(since, model, kb, key, status, rated, search, min(limit, 1000))
    sink = output.open("w", encoding="utf-8") if output else sys.stdout
    n = 0
    try:
        while n < limit:
            page = store.list_traces(q)
            for t in page:
                for line in _lines(store.get_trace(t.trace_id), fmt):
                    sink.write(line + "\n")
                n += 1
            if len(page) < q.limit:
                break
            q.before = (page[-1].start_ns, page[-1].trace_id)
    finally:
        if output:
            sink.close()
    err.print(f"exported {n} traces" + (f" to {output}" if output else ""), highlight=False)


def _lines(spans: list[Any], fmt: str) -> list[str]:
    if fmt == "jsonl":
        return [json.dumps(asdict(s), ensure_ascii=False) for s in spans]
    rows = []
    for s in spans:
        a = s.attributes
        if s.status == "error" or "gen_ai.input.messages" not in a:
            continue
        if "gen_ai.output.messages" not in a:
            continue
        messages = json.loads(a["gen_ai.input.messages"]) + json.loads(a["gen_ai.output.messages"])
        rows.append(json.dumps({"messages": messages}, ensure_ascii=False))
    return rows


@app.command()
def status() -> None:
    """Where traces are kept, how many there are, and the tracing settings."""
    settings = load_settings()
    t = settings.tracing
    store = _store()
    where = "the shared database" if settings.database_url else str(settings.home / "traces.sqlite")
    typer.echo(f"store: {where}")
    typer.echo(f"spans stored: {store.count():,}")
    typer.echo(f"enabled: {t.enabled}   capture_content: {t.capture_content}")
    typer.echo(f"OTLP export: {t.otlp_endpoint or 'off'}")
    typer.echo(f"retention: {t.retention_days or '∞'} days, at most {t.max_spans:,} spans")
