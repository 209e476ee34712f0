"""``hanlin keys …``: store, list and remove provider API keys.

Keys go to ``HANLIN_HOME/keys.json`` (0600); an endpoint's environment variable wins over the
file. Nothing here ever prints a key: listings show the last four characters at most.
"""

from __future__ import annotations

import difflib
import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hanlin.agents.tools.websearch_providers import SEARCH_PROVIDERS
from hanlin.cli.chat import stdin_state
from hanlin.config import Settings, load_settings
from hanlin.errors import InvalidInputError, NotFoundError
from hanlin.models.base import Endpoint
from hanlin.models.catalog import Catalog
from hanlin.models.keys import KeySource, KeyStore, Secret, endpoint_key_status, key_status

app = typer.Typer(
    help="Provider API keys, stored 0600 in HANLIN_HOME or read from environment variables.",
    no_args_is_help=True,
)
out = Console()
err = Console(stderr=True)


def key_store(settings: Settings) -> KeyStore:
    """The key file the gateway reads for these settings."""
    return KeyStore(settings.home / "keys.json")


def key_source(endpoint: Endpoint, store: KeyStore) -> KeySource:
    """Where the gateway would find this endpoint's key (the environment wins), if anywhere."""
    return endpoint_key_status(endpoint, store).source


def key_badge(source: KeySource) -> str:
    """The key status as ``models ls`` shows it (rich markup)."""
    return {
        "env": "[green]✓[/] env",
        "file": "[green]✓[/] file",
        "missing": "[red]✗[/] missing",
        "not needed": "[dim]– not needed[/]",
    }[source]


def _read_value(endpoint: str) -> str:
    state = stdin_state()
    if state == "tty":
        value: str = typer.prompt(f"API key for {endpoint}", hide_input=True)
        return value
    if state == "data":
        return sys.stdin.readline()
    raise InvalidInputError(
        "no key given",
        hint=f"pass --value, pipe it in (`… | hanlin keys set {endpoint}`), "
        "or run this in a terminal",
    )


@app.command("set")
def set_(
    provider: Annotated[str, typer.Argument(help="the provider, as in PROVIDER/MODEL")],
    value: Annotated[
        str | None,
        typer.Option(
            "--value",
            help="the key (it lands in your shell history: prefer the hidden prompt or a pipe)",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Store a provider's API key (a model provider, or a web_search engine such as tavily or
    bocha). Prompts with hidden input, or reads one line from a pipe."""
    settings = load_settings()
    search = SEARCH_PROVIDERS.get(provider.lower())
    if search is not None:  # SearXNG's "key" is its URL
        _set_search_key(settings, search.name, search.label, search.env, value)
        return
    endpoint = Catalog(settings.models).endpoint(provider)  # unknown → did-you-mean
    key = _clean(value if value is not None else _read_value(endpoint.name))
    store = key_store(settings)
    store.set(endpoint.name, key)
    err.print(
        f"[green]✓[/] stored the key for [bold]{escape(endpoint.name)}[/] "
        f"({Secret(key).masked}) in {escape(str(store.path))}",
        highlight=False,
    )
    if not endpoint.needs_key:
        err.print(f"  [dim]{escape(endpoint.name)} does not need a key; it will be sent anyway[/]")
    if endpoint_key_status(endpoint, store).source == "env":
        err.print(
            f"  [yellow]{endpoint.key_env} is set in the environment and wins over "
            "the stored key[/]",
            highlight=False,
        )


def _clean(raw: str) -> str:
    key = raw.strip()
    if not key:
        raise InvalidInputError(
            "an empty key was given", hint="paste the key, or use `hanlin keys rm`"
        )
    return key


def _set_search_key(settings: Settings, name: str, label: str, env: str, value: str | None) -> None:
    key = _clean(value if value is not None else _read_value(name))
    store = key_store(settings)
    store.set(name, key)
    err.print(
        f"[green]✓[/] stored the web_search key for [bold]{escape(label)}[/] "
        f"({Secret(key).masked}) in {escape(str(store.path))}",
        highlight=False,
    )
    if key_status(name, env, store).source == "env":
        err.print(f"  [yellow]{env} is set in the environment and wins over the stored key[/]")


@app.command("ls")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="JSON for scripts")] = False,
) -> None:
    """List the keys Hanlin can use: provider, source (env or file) and the last 4 characters."""
    settings = load_settings()
    endpoints = Catalog(settings.models).endpoints
    store = key_store(settings)
    rows: list[dict[str, object]] = []
    for endpoint in endpoints.values():
        rows.extend(endpoint_key_status(endpoint, store).listing())
    for name, search in SEARCH_PROVIDERS.items():  # web_search engines
        rows.extend(key_status(name, search.env, store).listing())
    for name in store.names():
        if name not in endpoints and name not in SEARCH_PROVIDERS:
            secret = store.get(name)
            rows.append(
                {
                    "provider": name,
                    "source": "file",
                    "variable": None,
                    "key": secret.masked if secret else "…",
                    "in_use": False,
                }
            )
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        err.print("no API keys set; add one with `hanlin keys set PROVIDER`")
        return
    table = Table()
    for col in ("provider", "source", "key", "note"):
        table.add_column(col)
    for row in rows:
        name = str(row["provider"])
        if name not in endpoints and name not in SEARCH_PROVIDERS:
            note = "[yellow]no such provider any more[/] (`hanlin keys rm`)"
        elif row["source"] == "env":
            note = f"from {row['variable']}"
        elif not row["in_use"]:
            note = f"[dim]unused: {row['variable']} wins[/]"
        else:
            note = ""
        table.add_row(escape(name), str(row["source"]), str(row["key"]), note)
    out.print(table)


@app.command()
def rm(
    provider: Annotated[str, typer.Argument(help="the provider whose stored key to delete")],
) -> None:
    """Delete a stored key (environment variables are left alone)."""
    settings = load_settings()
    store = key_store(settings)
    names = store.names()
    if provider not in names:
        close = difflib.get_close_matches(provider, names, n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "see `hanlin keys ls`"
        raise NotFoundError(f"no stored key for '{provider}'", hint=hint)
    store.remove(provider)
    err.print(f"removed the stored key for [bold]{escape(provider)}[/]", highlight=False)
    endpoint = Catalog(settings.models).endpoints.get(provider)
    if endpoint is not None and endpoint_key_status(endpoint, store).source == "env":
        err.print(f"  [yellow]{endpoint.key_env} is still set in the environment[/]")


@app.command()
def path() -> None:
    """Print where stored keys live."""
    print(key_store(load_settings()).path)
