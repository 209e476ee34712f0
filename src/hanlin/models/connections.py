"""Provider connections an admin manages at run time: API keys, local servers, custom endpoints.

The web UI's settings page (``/api/settings/connections``) calls these functions. A connection
is an endpoint as ``[models.endpoints.NAME]`` describes one, saved in ``HANLIN_HOME/
connections.json`` (0600, :class:`~hanlin.models.catalog.ConnectionStore`); its API key goes
to the key file (``keys.json``, 0600) like ``hanlin keys set``, and is never handed back: a
listing shows ``sk-…abcd``. Every change reloads the gateway's catalog, so the next call sees it
without a restart. Each function requires the ``admin`` scope of the caller.

Endpoint URLs are checked with :func:`hanlin.net.ssrf.endpoint_blocked_reason`: loopback and
private addresses are allowed (an admin's Ollama or vLLM), the metadata services and other
non-routable ranges are not — see docs/security.md.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hanlin.access import caller as access
from hanlin.config import EndpointSettings
from hanlin.errors import ConfigError, InvalidInputError, NotFoundError
from hanlin.models.base import Endpoint, builtin_endpoints
from hanlin.models.gateway import Gateway
from hanlin.models.keys import Secret, endpoint_key_status
from hanlin.net.ssrf import (
    BlockedURLError,
    FetchError,
    check_url,
    endpoint_blocked_reason,
    safe_fetch,
)

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,39}$")
#: a model list larger than this is not a model list
_MAX_LIST_BYTES = 8 << 20


class ConnectionUpdate(BaseModel):
    """What an admin changes on one connection; a field left out stays as it is."""

    model_config = ConfigDict(extra="forbid")

    #: the protocol of a new endpoint (``openai_compat``, ``anthropic``); presets keep theirs
    provider: str | None = None
    base_url: str | None = Field(default=None, max_length=2000)
    #: stored in the key file; never returned
    api_key: str | None = Field(default=None, max_length=4000)
    #: forget the stored key
    clear_key: bool = False
    #: the model names the endpoint serves (the model picker lists these)
    models: list[str] | None = Field(default=None, max_length=500)


def mask(secret: Secret) -> str:
    """A key as a listing shows it: its prefix up to the first dash and the last four
    characters (``sk-…abcd``); short keys show nothing of themselves."""
    value = secret.reveal()
    if len(value) < 12:
        return "…"
    head, dash, _ = value[:8].partition("-")
    return (head + dash if dash else "") + "…" + value[-4:]


def _row(gw: Gateway, endpoint: Endpoint, presets: dict[str, Endpoint]) -> dict[str, Any]:
    saved = gw.catalog.connections.load()
    status = endpoint_key_status(endpoint, gw.keys)
    preset = presets.get(endpoint.name)
    if endpoint.name in saved:
        origin = "connection"
    elif endpoint.name in gw.models.endpoints:
        origin = "hanlin.toml"
    else:
        origin = "preset"
    secret = status.secret
    return {
        "name": endpoint.name,
        "provider": endpoint.provider,
        "base_url": endpoint.base_url,
        "description": endpoint.description,
        "docs_url": endpoint.docs_url,
        # what the settings page groups by: a cloud provider needing a key, a local server,
        # or an endpoint an admin added
        "kind": "custom" if preset is None else ("provider" if preset.key_env else "local"),
        "origin": origin,
        "needs_key": status.needed,
        "key": None
        if secret is None
        else {"masked": mask(secret), "source": status.source, "variable": status.variable},
        "key_variable": endpoint.key_env,
        "available": status.available,
        "models": [m.name for m in endpoint.models],
        "open_model_list": endpoint.open_model_list,
        "removable": origin == "connection" or status.stored is not None,
    }


def _remote(endpoint: Endpoint) -> bool:
    """Endpoints reached over HTTP (in-process ones like ``local`` have no URL or key)."""
    return bool(endpoint.base_url or endpoint.key_env)


def list_connections(gw: Gateway) -> list[dict[str, Any]]:
    """Every HTTP endpoint the gateway knows, with its key status (masked) and models."""
    access.require("admin")
    presets = builtin_endpoints(gw.catalog.classes)
    return [_row(gw, e, presets) for e in gw.catalog.endpoints.values() if _remote(e)]


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise InvalidInputError(
            f"invalid connection name {name!r}",
            hint="use up to 40 lowercase letters, digits, '_', '-' or '.'",
            param="name",
            code="invalid_connection_name",
            params={"name": name},
        )


def check_endpoint_url(url: str) -> None:
    """Refuse an endpoint URL that is not http(s) or resolves to a metadata service or other
    non-routable address (loopback and private networks are allowed)."""
    try:
        check_url(url, policy=endpoint_blocked_reason)
    except BlockedURLError as exc:
        raise InvalidInputError(
            exc.message.replace("refused to fetch", "refused to use"),
            hint="give the http(s) address of the model server (loopback and LAN addresses "
            "work; metadata and link-local addresses never do)",
            param="base_url",
            code="endpoint_blocked",
            params={"url": url},
        ) from None
    except FetchError as exc:
        raise InvalidInputError(
            exc.message,
            hint="check the host name",
            param="base_url",
            code="endpoint_unresolvable",
            params={"url": url},
        ) from None


def _key_variable(name: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", name.upper()) + "_API_KEY"


def save_connection(gw: Gateway, name: str, update: ConnectionUpdate) -> dict[str, Any]:
    """Add or change a connection and reload the gateway; returns its listing row.

    Raises InvalidInputError (bad name, URL or models), NotFoundError (an unknown provider)."""
    access.require("admin")
    _check_name(name)
    store = gw.catalog.connections
    saved = store.load()
    known = gw.catalog.endpoints.get(name)
    entry = saved.get(name)
    if entry is None:
        provider = update.provider or (known.provider if known else "openai_compat")
        entry = EndpointSettings(provider=provider)
    elif update.provider and update.provider != entry.provider:
        entry = entry.model_copy(update={"provider": update.provider})
    if entry.provider not in gw.catalog.classes:
        raise NotFoundError(
            f"unknown provider '{entry.provider}'",
            hint=f"use one of: {', '.join(sorted(gw.catalog.classes))}",
            code="provider_not_found",
            params={"provider": entry.provider},
        )
    changes: dict[str, Any] = {}
    if update.base_url is not None:
        url = update.base_url.strip().rstrip("/")
        if url:
            check_endpoint_url(url)
        changes["base_url"] = url or None
    if update.models is not None:
        changes["models"] = list(dict.fromkeys(m.strip() for m in update.models if m.strip()))
    key = (update.api_key or "").strip()
    if key and not (known and known.key_env) and not entry.key_env:
        changes["key_env"] = _key_variable(name)  # a key is only sent where one is expected
    if update.clear_key and entry.key_env == _key_variable(name):
        changes["key_env"] = None
    entry = entry.model_copy(update=changes)
    if known is None and not entry.base_url:
        raise InvalidInputError(
            f"the new connection '{name}' needs a base URL",
            hint="give the server's OpenAI-compatible address, e.g. http://127.0.0.1:11434/v1",
            param="base_url",
            code="base_url_required",
        )
    keep = entry != EndpointSettings(provider=entry.provider) or known is None
    before = dict(saved)
    if keep:
        saved[name] = entry
    else:
        saved.pop(name, None)
    store.save(saved)
    try:
        if key:
            gw.keys.set(name, key)
        elif update.clear_key and name in gw.keys.names():
            gw.keys.remove(name)
        gw.reload(changed=[name])
    except ConfigError:
        store.save(before)
        gw.reload(changed=[name])
        raise
    presets = builtin_endpoints(gw.catalog.classes)
    return _row(gw, gw.catalog.endpoints[name], presets)


def remove_connection(gw: Gateway, name: str) -> None:
    """Forget what was saved for ``name`` (its settings and stored key) and reload: a preset
    goes back to its defaults, an added endpoint disappears.

    Raises NotFoundError when nothing is saved for it."""
    access.require("admin")
    store = gw.catalog.connections
    saved = store.load()
    stored_key = name in gw.keys.names()
    if name not in saved and not stored_key:
        raise NotFoundError(
            f"no saved connection '{name}'",
            hint="connections from hanlin.toml or the environment are changed there",
            code="connection_not_found",
            params={"name": name},
        )
    if name in saved:
        del saved[name]
        store.save(saved)
    if stored_key:
        gw.keys.remove(name)
    gw.reload(changed=[name])


async def discover_models(
    gw: Gateway,
    *,
    name: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
) -> list[str]:
    """The model ids an OpenAI-compatible endpoint lists at ``GET {base_url}/models``: the
    "test connection" of the settings page. ``name`` fills in the saved URL and key.

    Raises InvalidInputError (no or refused URL) or FetchError with code
    ``connection_failed`` / ``connection_auth_failed`` / ``connection_bad_response``."""
    access.require("admin")
    endpoint = gw.catalog.endpoints.get(name) if name else None
    url = (base_url or (endpoint.base_url if endpoint else "") or "").strip().rstrip("/")
    if not url:
        raise InvalidInputError(
            "no base URL to test",
            hint="enter the server's address, e.g. http://127.0.0.1:11434/v1",
            param="base_url",
            code="base_url_required",
        )
    key = (api_key or "").strip()
    if not key and endpoint is not None:
        secret = endpoint_key_status(endpoint, gw.keys).secret
        key = secret.reveal() if secret else ""
    await asyncio.to_thread(check_endpoint_url, url)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    target = f"{url}/models"
    try:
        # no redirects: the key must not follow one to another host
        fetched = await asyncio.to_thread(
            safe_fetch,
            target,
            headers=headers,
            policy=endpoint_blocked_reason,
            max_redirects=0,
            max_bytes=_MAX_LIST_BYTES,
            timeout=15.0,
        )
    except FetchError as exc:
        auth = exc.status in (401, 403)
        raise FetchError(
            f"{target} answered HTTP {exc.status}: the API key was refused"
            if auth
            else exc.message,
            hint="check the API key" if auth else "check the address and that the server runs",
            status=exc.status,
            code="connection_auth_failed" if auth else "connection_failed",
            params={"url": target, "status": exc.status},
        ) from None
    return _model_ids(fetched.content, target)


def _model_ids(content: bytes, url: str) -> list[str]:
    try:
        body = json.loads(content)
        data = body["data"] if isinstance(body, dict) and "data" in body else body["models"]
        ids = [str(m.get("id") or m.get("name")) for m in data if isinstance(m, dict)]
    except (ValueError, KeyError, TypeError):
        raise FetchError(
            f"{url} did not answer with a model list",
            hint="give the OpenAI-compatible base URL (it usually ends in /v1)",
            code="connection_bad_response",
            params={"url": url},
        ) from None
    return sorted({i for i in ids if i and i != "None"})


__all__ = [
    "ConnectionUpdate",
    "check_endpoint_url",
    "discover_models",
    "list_connections",
    "mask",
    "remove_connection",
    "save_connection",
]
