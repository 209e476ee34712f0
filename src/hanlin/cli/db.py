"""``hanlin db``: a local PostgreSQL for trying the shared-database mode, and ``hanlin kb
copy`` to move a knowledge base between the embedded store and PostgreSQL."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from hanlin.cli.progress import progress_bar
from hanlin.config import load_settings

app = typer.Typer(no_args_is_help=True, help="The shared database (database_url).")
err = Console(stderr=True)


@app.command()
def start() -> None:
    """Start a local PostgreSQL 18 + pgvector (data in HANLIN_HOME/postgres) and print its URL.

    It listens on a Unix socket only, and keeps running after this command ends.

    Use the printed URL as database_url in hanlin.toml (or HANLIN_DATABASE_URL).
    """
    from hanlin.db.local import start_local
    from hanlin.db.postgres import database

    settings = load_settings()
    server = start_local(settings.home / "postgres", keep_running=True)
    database(server.url)  # checks pgvector and applies the schema now, not on first use
    err.print(f"PostgreSQL is running; data in {server.datadir}", highlight=False)
    err.print("use it with:  export HANLIN_DATABASE_URL=", end="", highlight=False)
    typer.echo(server.url)


@app.command()
def stop() -> None:
    """Stop the local PostgreSQL that `hanlin db start` started (its data stays)."""
    from hanlin.db.local import start_local

    settings = load_settings()
    datadir = settings.home / "postgres"
    if not (datadir / "postmaster.pid").exists():
        err.print("no local PostgreSQL is running from " + str(datadir), highlight=False)
        return
    start_local(datadir, keep_running=True).stop()
    err.print("stopped the local PostgreSQL; its data stays in " + str(datadir), highlight=False)


@app.command()
def status() -> None:
    """Check database_url: reachable, pgvector present, schema current."""
    from hanlin.db.migrations import latest
    from hanlin.db.postgres import database
    from hanlin.db.url import redact

    settings = load_settings()
    if not settings.database_url:
        typer.echo("database_url is not set: everything is embedded under " + str(settings.home))
        return
    database(settings.database_url)
    typer.echo(f"{redact(settings.database_url)}: reachable, pgvector ok, schema v{latest()}")


def copy(
    name: str,
    to: Annotated[
        str,
        typer.Option(
            "--to", help="postgresql://… to copy into that database, or 'embedded' to copy back"
        ),
    ],
    as_name: Annotated[
        str | None, typer.Option("--as", help="name of the copy (default: the same)")
    ] = None,
) -> None:
    """Copy a knowledge base to PostgreSQL or back to the embedded store, and verify it.

    Documents, chunks (with tokens and vectors), sources and file records are copied as stored.

    Nothing is parsed or embedded again.

    The copy is checked by counts and by identical top-10 results for sample queries.
    """
    from hanlin.knowledge.copy import copy_kb

    with progress_bar(f"copying {name}", err) as bar:
        report = copy_kb(
            name, to, as_name=as_name, progress=lambda done, total: bar(done, total, "")
        )
    err.print(
        f"copied {report.documents} documents, {report.chunks} chunks, {report.vectors} vectors "
        f"to '{report.target}' in {report.where}",
        highlight=False,
        markup=False,
    )
    if not report.ok:
        err.print(
            f"{len(report.mismatched_queries)} of {report.queries} sample queries rank "
            "differently in the copy; first: " + report.mismatched_queries[0],
            style="yellow",
            markup=False,
        )
        raise typer.Exit(1)
    err.print(f"verified: the same top-10 for {report.queries} sample queries", highlight=False)
