"""Which models exist and what a model name means.

A name resolves, in order, to: a route from ``[models.routes.NAME]`` in ``hanlin.toml``; an alias
made with ``hanlin models alias``; ``endpoint/model``; or a bare model name (``gpt-4o-mini``) that
exactly one endpoint lists. A name that resolves to nothing raises
:class:`~hanlin.models.errors.ModelNotFoundError` with the closest known names. Endpoints are
the registered providers' presets, overlaid with ``[models.endpoints.NAME]`` from the settings,
then with the connections an admin saved at run time (``connections.json``, see
:mod:`hanlin.models.connections`), which win over ``hanlin.toml`` for the same name.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from dataclasses import dataclass
from pathlib import Path

from hanlin.config import EndpointSettings, ModelsSettings, RouteSettings
from hanlin.errors import ConfigError, NotFoundError
from hanlin.fileio import atomic_write_text
from hanlin.models.base import (
    Endpoint,
    ModelInfo,
    Price,
    ProviderFactory,
    builtin_endpoints,
    provider_classes,
)
from hanlin.models.errors import ModelNotFoundError
from hanlin.paths import hanlin_home


@dataclass(frozen=True, slots=True)
class Deployment:
    """One model on one endpoint: what a route's entries resolve to."""

    endpoint: Endpoint
    model: str
    info: ModelInfo | None

    @property
    def label(self) -> str:
        return f"{self.endpoint.name}/{self.model}"


@dataclass(frozen=True, slots=True)
class Route:
    """What a model name means: deployments tried by a strategy."""

    name: str
    deployments: tuple[Deployment, ...]
    strategy: str = "fallback"


class AliasStore:
    """User aliases in ``HANLIN_HOME/aliases.json``: name → deployments + strategy."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or hanlin_home() / "aliases.json"

    def load(self) -> dict[str, RouteSettings]:
        if not self.path.exists():
            return {}
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            return {k: RouteSettings(**v) for k, v in raw.items()}
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(
                f"cannot read aliases from {self.path} ({type(exc).__name__})",
                hint="fix or delete the file, then re-create aliases with `hanlin models alias`",
            ) from None

    def save(self, aliases: dict[str, RouteSettings]) -> None:
        data = {k: v.model_dump() for k, v in sorted(aliases.items())}
        # 0600 as mkstemp made it before: aliases may carry endpoint settings
        atomic_write_text(self.path, json.dumps(data, indent=2, ensure_ascii=False), mode=0o600)


class ConnectionStore:
    """Endpoints saved at run time (the settings page) in ``HANLIN_HOME/connections.json``:
    name → the same fields as ``[models.endpoints.NAME]``. Their keys are in the key file."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or hanlin_home() / "connections.json"

    def load(self) -> dict[str, EndpointSettings]:
        if not self.path.exists():
            return {}
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            return {k: EndpointSettings(**v) for k, v in raw.items()}
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(
                f"cannot read connections from {self.path} ({type(exc).__name__})",
                hint="fix or delete the file, then add the connections again in the settings page",
            ) from None

    def save(self, connections: dict[str, EndpointSettings]) -> None:
        data = {k: v.model_dump(exclude_defaults=True) for k, v in sorted(connections.items())}
        text = json.dumps(data, indent=2, ensure_ascii=False)
        atomic_write_text(self.path, text, mode=0o600)


class Catalog:
    """Endpoints, models, prices and name resolution for one settings object."""

    def __init__(
        self,
        settings: ModelsSettings,
        aliases: AliasStore | None = None,
        connections: ConnectionStore | None = None,
    ) -> None:
        self.settings = settings
        self.aliases = aliases or AliasStore()
        self.connections = connections or ConnectionStore()
        self.classes: dict[str, ProviderFactory] = provider_classes()
        self.endpoints = self._endpoints()
        self._routes: dict[str, Route] = {}

    def _endpoints(self) -> dict[str, Endpoint]:
        endpoints = builtin_endpoints(self.classes)
        configured = {**self.settings.endpoints, **self.connections.load()}
        for name, cfg in configured.items():
            if cfg.provider not in self.classes:
                raise ConfigError(
                    f"endpoint '{name}' uses unknown provider '{cfg.provider}'",
                    hint=f"use one of: {', '.join(sorted(self.classes))}",
                )
            base = endpoints.get(name)
            models = tuple(ModelInfo(m) for m in cfg.models)
            if base is None:
                if not cfg.base_url and cfg.provider == "openai_compat":
                    raise ConfigError(
                        f"endpoint '{name}' needs a base_url",
                        hint=f"set models.endpoints.{name}.base_url in hanlin.toml",
                    )
                base = Endpoint(name, cfg.provider, open_model_list=not models)
            changes: dict[str, object] = {"options": {**base.options, **cfg.options}}
            if cfg.base_url:
                changes["base_url"] = cfg.base_url
            if cfg.key_env:
                changes["key_env"] = cfg.key_env
            if cfg.dialect:
                changes["dialect"] = cfg.dialect
            if models:
                known = {m.name: m for m in base.models}
                changes["models"] = tuple(known.get(m.name, m) for m in models)
            endpoints[name] = dataclasses.replace(base, **changes)  # type: ignore[arg-type]
        return endpoints

    def endpoint(self, name: str) -> Endpoint:
        try:
            return self.endpoints[name]
        except KeyError:
            close = difflib.get_close_matches(name, self.endpoints, n=3)
            hint = f"did you mean {', '.join(close)}?" if close else "see `hanlin models ls`"
            raise NotFoundError(f"unknown model provider '{name}'", hint=hint) from None

    def labels(self) -> list[str]:
        """Every listed ``endpoint/model``, routes and aliases: the names a user can pick."""
        names = [f"{e.name}/{m.name}" for e in self.endpoints.values() for m in e.models]
        return names + sorted({*self.settings.routes, *self.aliases.load()})

    def closest(self, name: str, n: int = 3) -> list[str]:
        """The known model names nearest to ``name`` (also matching its part after ``/``)."""
        labels = self.labels()
        close = difflib.get_close_matches(name, labels, n=n, cutoff=0.6)
        bare = {label.split("/", 1)[-1]: label for label in labels}
        for hit in difflib.get_close_matches(name.rsplit("/", 1)[-1], bare, n=n, cutoff=0.6):
            if bare[hit] not in close:
                close.append(bare[hit])
        return close[:n]

    def bare(self, model: str) -> list[Deployment]:
        """The deployments of endpoints that list ``model`` by its own name."""
        return [
            Deployment(e, model, info)
            for e in self.endpoints.values()
            if (info := e.model(model)) is not None
        ]

    def deployment(self, name: str) -> Deployment:
        endpoint_name, _, model = name.partition("/")
        if not model or endpoint_name not in self.endpoints:
            found = self.bare(name)  # gpt-4o-mini, or Qwen/Qwen2.5-7B-Instruct on one endpoint
            if len(found) == 1:
                return found[0]
            if found:
                labels = ", ".join(d.label for d in found)
                raise ModelNotFoundError(
                    f"'{name}' is ambiguous: it is served by {labels}",
                    hint="name the endpoint too, e.g. " + found[0].label,
                    closest=[d.label for d in found],
                    params={"model": name},
                )
            close = self.closest(name)
            if not model:
                hint = (
                    f"did you mean {', '.join(close)}?"
                    if close
                    else "use PROVIDER/MODEL (e.g. deepseek/deepseek-chat) or an alias from "
                    "`hanlin models ls --aliases`"
                )
                raise ModelNotFoundError(
                    f"unknown model '{name}'", hint=hint, closest=close, params={"model": name}
                )
            hint = f"did you mean {', '.join(close)}?" if close else "see `hanlin models ls`"
            raise ModelNotFoundError(
                f"unknown model provider '{endpoint_name}'",
                hint=hint,
                closest=close,
                params={"model": name},
            )
        endpoint = self.endpoints[endpoint_name]
        info = endpoint.model(model)
        if info is None and not endpoint.open_model_list:
            names = [m.name for m in endpoint.models]
            close = difflib.get_close_matches(model, names, n=3)
            hint = f"did you mean {', '.join(close)}?" if close else f"models: {', '.join(names)}"
            raise ModelNotFoundError(
                f"{endpoint_name} has no model '{model}'",
                hint=hint,
                closest=[f"{endpoint_name}/{c}" for c in close],
                params={"model": name},
            )
        return Deployment(endpoint, model, info)

    def resolve(self, name: str) -> Route:
        """The route for a model name, alias or configured route (cached per catalog)."""
        route = self._routes.get(name)
        if route is not None:
            return route
        cfg = self.settings.routes.get(name) or self.aliases.load().get(name)
        if cfg is not None:
            route = Route(name, tuple(self.deployment(d) for d in cfg.deployments), cfg.strategy)
        else:
            route = Route(name, (self.deployment(name),))
        self._routes[name] = route
        return route

    def price(self, deployment: Deployment) -> Price | None:
        override = self.settings.prices.get(deployment.label)
        if override is not None:
            return Price(override.input, override.output, override.cached_input, override.currency)
        return deployment.info.price if deployment.info else None

    def factory(self, endpoint: Endpoint) -> ProviderFactory:
        try:
            return self.classes[endpoint.provider]
        except KeyError:
            raise ConfigError(
                f"provider '{endpoint.provider}' of endpoint '{endpoint.name}' is not installed",
                hint="install the package that provides it, or fix models.endpoints in hanlin.toml",
            ) from None
