"""Which models exist and what a model name means.

A name resolves, in order, to: a route from ``[models.routes.NAME]`` in ``hanlin.toml``; an alias
made with ``hanlin models alias``; or ``endpoint/model``. Endpoints are the registered providers'
presets, overlaid with ``[models.endpoints.NAME]`` from the settings.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from dataclasses import dataclass
from pathlib import Path

from hanlin.config import ModelsSettings, RouteSettings
from hanlin.errors import ConfigError, InvalidInputError, NotFoundError
from hanlin.fileio import atomic_write_text
from hanlin.models.base import (
    Endpoint,
    ModelInfo,
    Price,
    ProviderFactory,
    builtin_endpoints,
    provider_classes,
)
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


class Catalog:
    """Endpoints, models, prices and name resolution for one settings object."""

    def __init__(self, settings: ModelsSettings, aliases: AliasStore | None = None) -> None:
        self.settings = settings
        self.aliases = aliases or AliasStore()
        self.classes: dict[str, ProviderFactory] = provider_classes()
        self.endpoints = self._endpoints()
        self._routes: dict[str, Route] = {}

    def _endpoints(self) -> dict[str, Endpoint]:
        endpoints = builtin_endpoints(self.classes)
        for name, cfg in self.settings.endpoints.items():
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

    def deployment(self, name: str) -> Deployment:
        if "/" not in name:
            raise InvalidInputError(
                f"'{name}' is not a model name",
                hint="use PROVIDER/MODEL (e.g. deepseek/deepseek-chat) or an alias from "
                "`hanlin models ls --aliases`",
            )
        endpoint_name, model = name.split("/", 1)
        endpoint = self.endpoint(endpoint_name)
        info = endpoint.model(model)
        if info is None and not endpoint.open_model_list:
            names = [m.name for m in endpoint.models]
            close = difflib.get_close_matches(model, names, n=3)
            hint = f"did you mean {', '.join(close)}?" if close else f"models: {', '.join(names)}"
            raise NotFoundError(f"{endpoint_name} has no model '{model}'", hint=hint)
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
