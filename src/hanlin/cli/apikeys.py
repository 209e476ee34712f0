"""``hanlin apikeys …``: API keys for ``hanlin serve`` — create (shown once), list, revoke.

Keys are stored as salted hashes in ``HANLIN_HOME/apikeys.json`` (0600), or with
``database_url`` in the database, shared by every replica; a running server sees changes at once
(from the database: within a second). See :mod:`hanlin.access.apikeys` for scopes.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hanlin.access.apikeys import SCOPES, APIKeys
from hanlin.access.auth import open_apikeys
from hanlin.config import load_settings
from hanlin.errors import NotFoundError, did_you_mean
from hanlin.knowledge.kb import KnowledgeBase

app = typer.Typer(
    help="API keys for `hanlin serve` and `hanlin mcp serve --http`. Scopes: "
    + "; ".join(f"{name} — {what}" for name, what in SCOPES.items())
    + ".",
    no_args_is_help=True,
)
out = Console()
err = Console(stderr=True)


def _store() -> APIKeys:
    return open_apikeys(load_settings())


def _when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else ""


@app.command()
def create(
    scope: Annotated[
        str,
        typer.Option(
            "--scope", help=f"comma-separated scopes: {', '.join(SCOPES)} (admin = everything)"
        ),
    ] = "chat",
    kb: Annotated[
        list[str] | None,
        typer.Option("--kb", help="limit the key to this knowledge base (repeat for more)"),
    ] = None,
    name: Annotated[str, typer.Option("--name", help="a label, e.g. who uses it")] = "",
) -> None:
    """Create a key and print it once (to stdout; details go to stderr)."""
    settings = load_settings()
    existing = KnowledgeBase.names(settings)
    for wanted in kb or []:
        if wanted not in existing:
            raise NotFoundError(
                f"no knowledge base named '{wanted}' to limit the key to",
                hint=did_you_mean(wanted, existing)
                + f"existing: {', '.join(existing) or 'none'} (create it with "
                f"`hanlin kb create {wanted}` first)",
            )
    store = _store()
    record, plain = store.create(scope.split(","), kbs=kb or [], name=name)
    print(plain)
    limits = f", knowledge bases: {', '.join(record.kbs)}" if record.kbs else ""
    err.print(
        f"[green]✓[/] created {record.id}{' (' + escape(name) + ')' if name else ''} "
        f"with scopes {', '.join(record.scopes)}{escape(limits)}",
        highlight=False,
    )
    err.print(
        "  [yellow]this is the only time the key is shown[/]: send it as "
        "`Authorization: Bearer hk-…`",
        highlight=False,
    )


@app.command("ls")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="JSON for scripts")] = False,
    all_: Annotated[bool, typer.Option("--all", help="include revoked keys")] = False,
) -> None:
    """List keys (ids, labels, scopes, knowledge bases) — never the keys themselves."""
    keys = [k for k in _store().records() if all_ or k.active]
    if as_json:
        print(json.dumps([k.public() for k in keys], ensure_ascii=False, indent=2))
        return
    if not keys:
        err.print("no API keys; create one with `hanlin apikeys create --scope chat`")
        return
    table = Table()
    for col in ("id", "name", "scopes", "knowledge bases", "created", "status"):
        table.add_column(col)
    for k in keys:
        status = "active" if k.active else f"[red]revoked {_when(k.revoked_at)}[/]"
        table.add_row(
            k.id,
            escape(k.name),
            ", ".join(k.scopes),
            escape(", ".join(k.kbs) or "all"),
            _when(k.created_at),
            status,
        )
    out.print(table)


@app.command()
def revoke(
    key: Annotated[str, typer.Argument(help="the key's id (key_…) or name")],
) -> None:
    """Revoke a key; a running server refuses it from the next request on (sharing a
    database_url: within a second, on every replica)."""
    record = _store().revoke(key)
    err.print(f"revoked {record.id}{' (' + escape(record.name) + ')' if record.name else ''}")
