"""``hanlin models …``: list and inspect models, and manage aliases (routes made from the CLI).

An alias is a name for one or more ``endpoint/model`` deployments tried by a strategy; several
targets make a fallback chain. Aliases live in ``HANLIN_HOME/aliases.json``; routes written in
``hanlin.toml`` under ``[models.routes]`` take precedence and are listed alongside.
"""

from __future__ import annotations

import difflib
import json
import re
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hanlin.cli.keys import key_badge, key_source, key_store
from hanlin.config import RouteSettings, Settings, load_settings
from hanlin.errors import HanlinError, InvalidInputError, NotFoundError
from hanlin.models.base import Endpoint, ModelInfo, Price
from hanlin.models.catalog import Catalog, Deployment
from hanlin.models.keys import KeyStore

app = typer.Typer(help="Models: list, inspect, and alias them.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)

_ALIAS_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@+-]{0,63}$")


class Kind(StrEnum):
    chat = "chat"
    embedding = "embedding"
    rerank = "rerank"


class Strategy(StrEnum):
    fallback = "fallback"
    round_robin = "round_robin"
    least_busy = "least_busy"


def _price_text(price: Price | None) -> str:
    if price is None:
        return "[dim]unknown[/]"
    cached = "–" if price.cached_input is None else f"{price.cached_input:g}"
    return f"{price.input:g} / {price.output:g} / {cached} {price.currency}"


def _price_dict(price: Price | None) -> dict[str, Any] | None:
    if price is None:
        return None
    return {
        "input": price.input,
        "output": price.output,
        "cached_input": price.cached_input,
        "currency": price.currency,
        "per": "1M tokens",
    }


def _capabilities(info: ModelInfo) -> list[str]:
    caps = []
    if info.supports_tools:
        caps.append("tools")
    if info.supports_images:
        caps.append("images")
    if info.supports_json_schema:
        caps.append("json_schema")
    return caps


def _model_row(
    catalog: Catalog, store: KeyStore, endpoint: Endpoint, info: ModelInfo | None
) -> dict[str, Any]:
    if info is None:  # an open endpoint with no listed models: any name passes through
        return {
            "name": f"{endpoint.name}/*",
            "endpoint": endpoint.name,
            "model": None,
            "kind": "any",
            "context": None,
            "price": None,
            "key": key_source(endpoint, store),
            "capabilities": [],
        }
    price = catalog.price(Deployment(endpoint, info.name, info))
    return {
        "name": f"{endpoint.name}/{info.name}",
        "endpoint": endpoint.name,
        "model": info.name,
        "kind": info.kind,
        "context": info.context,
        "price": _price_dict(price),
        "key": key_source(endpoint, store),
        "capabilities": _capabilities(info),
        "dim": info.dim,
    }


def _aliases(settings: Settings, catalog: Catalog) -> dict[str, tuple[RouteSettings, str]]:
    """Every named route: aliases, then ``hanlin.toml`` routes (which win on a clash)."""
    found = {name: (cfg, "alias") for name, cfg in catalog.aliases.load().items()}
    found.update({name: (cfg, "hanlin.toml") for name, cfg in settings.models.routes.items()})
    return dict(sorted(found.items()))


@app.command("ls")
def list_(
    provider: Annotated[
        str | None, typer.Option("--provider", "-p", help="only this provider (e.g. deepseek)")
    ] = None,
    kind: Annotated[Kind | None, typer.Option("--kind", "-k", help="only this kind")] = None,
    aliases: Annotated[bool, typer.Option("--aliases", help="list aliases and routes")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON for scripts")] = False,
) -> None:
    """List models with kind, context, price per 1M tokens and whether their key is set."""
    settings = load_settings()
    catalog = Catalog(settings.models)
    if aliases:
        _list_aliases(settings, catalog, as_json)
        return
    endpoints = [catalog.endpoint(provider)] if provider else list(catalog.endpoints.values())
    store = key_store(settings)
    rows: list[dict[str, Any]] = []
    for endpoint in endpoints:
        infos: list[ModelInfo | None] = [
            m for m in endpoint.models if kind is None or m.kind == kind.value
        ]
        if not endpoint.models and endpoint.open_model_list and kind is None:
            infos.append(None)
        rows.extend(_model_row(catalog, store, endpoint, info) for info in infos)
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        err.print("no models match")
        return
    table = Table()
    for col in ("model", "kind", "context", "price / 1M in / out / cached", "key"):
        table.add_column(col, overflow="fold")
    for row in rows:
        price = row["price"]
        table.add_row(
            escape(row["name"]),
            row["kind"],
            "–" if row["context"] is None else f"{row['context']:,}",
            "–" if row["model"] is None else _price_text(_as_price(price)),
            key_badge(row["key"]),
        )
    out.print(table)


def _as_price(d: dict[str, Any] | None) -> Price | None:
    if d is None:
        return None
    return Price(d["input"], d["output"], d["cached_input"], d["currency"])


def _list_aliases(settings: Settings, catalog: Catalog, as_json: bool) -> None:
    found = _aliases(settings, catalog)
    if as_json:
        rows = [
            {"name": n, "targets": cfg.deployments, "strategy": cfg.strategy, "source": source}
            for n, (cfg, source) in found.items()
        ]
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not found:
        err.print("no aliases; make one with `hanlin models alias NAME PROVIDER/MODEL`")
        return
    table = Table()
    for col in ("alias", "targets", "strategy", "defined in"):
        table.add_column(col, overflow="fold")
    for name, (cfg, source) in found.items():
        table.add_row(escape(name), escape(", ".join(cfg.deployments)), cfg.strategy, source)
    out.print(table)


@app.command()
def show(
    name: Annotated[str, typer.Argument(help="PROVIDER/MODEL, an alias, or a provider")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON for scripts")] = False,
) -> None:
    """Show an alias (its targets and strategy), a model, or a provider and its models."""
    settings = load_settings()
    catalog = Catalog(settings.models)
    store = key_store(settings)
    found = _aliases(settings, catalog)
    if name in found:
        _show_route(catalog, store, name, *found[name], as_json)
    elif "/" in name:
        dep = catalog.deployment(name)  # unknown → did-you-mean
        _show_model(catalog, store, dep, as_json)
    elif name in catalog.endpoints:
        _show_endpoint(catalog, store, catalog.endpoints[name], as_json)
    else:
        candidates = [*found, *catalog.endpoints]
        close = difflib.get_close_matches(name, candidates, n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "see `hanlin models ls`"
        raise NotFoundError(f"no model, alias or provider named '{name}'", hint=hint)


def _endpoint_dict(endpoint: Endpoint, store: KeyStore) -> dict[str, Any]:
    return {
        "endpoint": endpoint.name,
        "provider": endpoint.provider,
        "dialect": endpoint.dialect,
        "base_url": endpoint.base_url,
        "key_env": endpoint.key_env,
        "key": key_source(endpoint, store),
        "description": endpoint.description,
        "docs_url": endpoint.docs_url,
    }


def _key_line(endpoint: Endpoint, store: KeyStore) -> str:
    source = key_source(endpoint, store)
    var = endpoint.key_env or "none"
    line = f"{var} — {key_badge(source)}"
    if source == "missing":
        line += f" (run `hanlin keys set {escape(endpoint.name)}` or set {var})"
    return line


def _show_model(catalog: Catalog, store: KeyStore, dep: Deployment, as_json: bool) -> None:
    endpoint, info = dep.endpoint, dep.info
    price = catalog.price(dep)
    if as_json:
        data: dict[str, Any] = {"name": dep.label, "model": dep.model}
        data.update(_endpoint_dict(endpoint, store))
        data.update(
            {
                "kind": info.kind if info else None,
                "context": info.context if info else None,
                "price": _price_dict(price),
                "capabilities": _capabilities(info) if info else None,
                "dim": info.dim if info else None,
            }
        )
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return
    lines = [
        f"[bold]{escape(dep.label)}[/]",
        f"  provider:     {escape(endpoint.name)} ({endpoint.provider}"
        + (f", dialect {endpoint.dialect}" if endpoint.dialect else "")
        + ")"
        + (f" — {escape(endpoint.description)}" if endpoint.description else ""),
        f"  base URL:     {escape(endpoint.base_url) or '–'}",
        f"  key:          {_key_line(endpoint, store)}",
    ]
    if info is None:
        lines.append("  [dim]not in the provider's model list: passed through as named[/]")
    else:
        lines += [
            f"  kind:         {info.kind}",
            f"  context:      {info.context:,} tokens",
        ]
        if info.dim:
            lines.append(f"  dimensions:   {info.dim}")
        lines.append(f"  capabilities: {', '.join(_capabilities(info)) or 'none'}")
    lines.append(f"  price / 1M:   {_price_text(price)} (in / out / cached)")
    if endpoint.docs_url:
        lines.append(f"  docs:         {escape(endpoint.docs_url)}")
    out.print("\n".join(lines), highlight=False)


def _show_endpoint(catalog: Catalog, store: KeyStore, endpoint: Endpoint, as_json: bool) -> None:
    rows = [_model_row(catalog, store, endpoint, m) for m in endpoint.models]
    if as_json:
        data = _endpoint_dict(endpoint, store)
        data["open_model_list"] = endpoint.open_model_list
        data["models"] = rows
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return
    out.print(
        f"[bold]{escape(endpoint.name)}[/] ({endpoint.provider})"
        + (f" — {escape(endpoint.description)}" if endpoint.description else "")
        + f"\n  base URL: {escape(endpoint.base_url) or '–'}"
        + f"\n  key:      {_key_line(endpoint, store)}"
        + (f"\n  docs:     {escape(endpoint.docs_url)}" if endpoint.docs_url else "")
        + ("\n  [dim]any model name is passed through[/]" if endpoint.open_model_list else ""),
        highlight=False,
    )
    if rows:
        table = Table()
        for col in ("model", "kind", "context", "price / 1M in / out / cached"):
            table.add_column(col, overflow="fold")
        for row in rows:
            table.add_row(
                escape(row["name"]),
                row["kind"],
                f"{row['context']:,}",
                _price_text(_as_price(row["price"])),
            )
        out.print(table)


def _show_route(
    catalog: Catalog,
    store: KeyStore,
    name: str,
    cfg: RouteSettings,
    source: str,
    as_json: bool,
) -> None:
    targets: list[dict[str, Any]] = []
    for target in cfg.deployments:
        try:
            dep = catalog.deployment(target)
        except HanlinError as exc:  # a model removed since the alias was made
            targets.append({"name": target, "error": exc.message})
            continue
        targets.append(
            {
                "name": target,
                "kind": dep.info.kind if dep.info else None,
                "context": dep.info.context if dep.info else None,
                "price": _price_dict(catalog.price(dep)),
                "key": key_source(dep.endpoint, store),
            }
        )
    if as_json:
        data = {"name": name, "source": source, "strategy": cfg.strategy, "targets": targets}
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return
    how = {
        "fallback": "tried in order; the next one answers on rate limits, 5xx and timeouts",
        "round_robin": "rotated call by call, failing over on errors",
        "least_busy": "the one with the fewest calls in flight first, failing over on errors",
    }[cfg.strategy]
    out.print(
        f"[bold]{escape(name)}[/] ({source})\n  strategy: {cfg.strategy} — {how}",
        highlight=False,
    )
    table = Table()
    for col in ("#", "target", "kind", "context", "price / 1M in / out / cached", "key"):
        table.add_column(col, overflow="fold")
    for i, t in enumerate(targets, 1):
        if "error" in t:
            table.add_row(str(i), escape(t["name"]), f"[red]✗ {escape(t['error'])}[/]", "", "", "")
            continue
        table.add_row(
            str(i),
            escape(t["name"]),
            t["kind"] or "?",
            "–" if t["context"] is None else f"{t['context']:,}",
            _price_text(_as_price(t["price"])),
            key_badge(t["key"]),
        )
    out.print(table)


@app.command()
def alias(
    name: Annotated[str, typer.Argument(help="the alias, e.g. fast")],
    targets: Annotated[
        list[str], typer.Argument(help="PROVIDER/MODEL deployments, tried by the strategy")
    ],
    strategy: Annotated[
        Strategy, typer.Option("--strategy", help="how to pick among several targets")
    ] = Strategy.fallback,
) -> None:
    """Make NAME mean one or more models. Several targets form a fallback chain by default."""
    settings = load_settings()
    catalog = Catalog(settings.models)
    if "/" in name:
        raise InvalidInputError(
            f"'{name}' looks like a PROVIDER/MODEL name; an alias may not shadow one",
            hint="pick a name without '/', e.g. fast or smart",
        )
    if not _ALIAS_NAME.match(name):
        raise InvalidInputError(
            f"'{name}' is not a valid alias name",
            hint="use letters, digits and _ . : @ + - (at most 64 characters)",
        )
    if name in settings.models.routes:
        raise InvalidInputError(
            f"'{name}' is a route in hanlin.toml, which would win over an alias",
            hint=f"pick another name, or edit [models.routes.{name}] in hanlin.toml",
        )
    existing = _aliases(settings, catalog)
    for target in targets:
        if targets.count(target) > 1:
            raise InvalidInputError(f"target '{target}' is given twice", hint="list each once")
        if target in existing:
            cfg = existing[target][0]
            raise InvalidInputError(
                f"'{target}' is an alias; an alias's targets must be PROVIDER/MODEL names",
                hint=f"use its targets instead: {' '.join(cfg.deployments)}",
            )
        catalog.deployment(target)  # unknown provider or model → error with did-you-mean
    store = catalog.aliases
    data = store.load()
    verb = "updated" if name in data else "created"
    data[name] = RouteSettings(deployments=list(targets), strategy=strategy.value)
    store.save(data)
    chain = " → ".join(targets) if strategy is Strategy.fallback else ", ".join(targets)
    err.print(
        f"[green]✓[/] {verb} alias [bold]{escape(name)}[/]: {escape(chain)}"
        + (f" ({strategy.value})" if len(targets) > 1 else ""),
        highlight=False,
    )


@app.command()
def unalias(name: Annotated[str, typer.Argument(help="the alias to delete")]) -> None:
    """Delete an alias."""
    settings = load_settings()
    store = Catalog(settings.models).aliases
    data = store.load()
    if name not in data:
        if name in settings.models.routes:
            raise InvalidInputError(
                f"'{name}' is a route in hanlin.toml, not an alias",
                hint=f"remove [models.routes.{name}] from hanlin.toml",
            )
        close = difflib.get_close_matches(name, list(data), n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "see `hanlin models ls --aliases`"
        raise NotFoundError(f"no alias named '{name}'", hint=hint)
    del data[name]
    store.save(data)
    err.print(f"removed alias [bold]{escape(name)}[/]", highlight=False)
