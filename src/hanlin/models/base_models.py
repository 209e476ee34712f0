"""Base models: models that continue text but cannot follow instructions, hold a conversation or
choose tools (the bundled Gemma 3 270M). RAG answers extractively with them; chat and agents
say so once and point to a chat model.

Which models are base models is the ``rag.base_models`` setting: fnmatch patterns over model
names and the ``endpoint/model`` they route to (default ``["local/gemma3-270m"]``).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence

from hanlin.config import Settings
from hanlin.errors import HanlinError
from hanlin.models.catalog import AliasStore, Catalog, ConnectionStore, Route

Resolver = Callable[[str], Route]

#: how to get a model that follows instructions, for notices (docs/models.md, "Base models")
CHAT_MODEL_HINT = (
    "for a chat model, set a provider key (`hanlin keys set deepseek`, then "
    "`-m deepseek/deepseek-chat`; see `hanlin models ls`) or serve one locally with Ollama "
    "(`-m ollama/qwen2.5:7b`) or vLLM (`-m vllm/MODEL`), and make it the default with "
    "models.default in hanlin.toml"
)


def is_base_model(
    settings: Settings,
    model: str | None,
    *,
    resolve: Resolver | None = None,
    patterns: Sequence[str] | None = None,
    missing_ok: bool = False,
) -> bool:
    """Whether ``model`` (None: ``models.default``) is a base model: its name, or the
    ``endpoint/model`` of the first deployment it routes to, matches a pattern.

    ``patterns`` default to ``settings.rag.base_models``; ``resolve`` turns a name into its
    route (pass ``gateway.resolve``: it caches routes; default: a catalog of ``settings``), and
    is called only when the name itself matches no pattern. A name that resolves to no model
    raises the catalog's error (:class:`~hanlin.errors.NotFoundError`), or is not a base
    model with ``missing_ok``.
    """
    name = model or settings.models.default
    found = list(settings.rag.base_models if patterns is None else patterns)
    if not found:
        return False
    if any(fnmatch.fnmatchcase(name, p) for p in found):
        return True
    if resolve is None:
        resolve = Catalog(
            settings.models,
            AliasStore(settings.home / "aliases.json"),
            ConnectionStore(settings.home / "connections.json"),
        ).resolve
    try:
        labels = [d.label for d in resolve(name).deployments[:1]]
    except HanlinError:
        if missing_ok:
            return False
        raise
    return any(fnmatch.fnmatchcase(label, p) for label in labels for p in found)


def base_model_notice(
    settings: Settings, model: str | None, *, resolve: Resolver | None = None
) -> str | None:
    """The one-line notice for chatting with a base model, or None when ``model`` is not one
    (or does not resolve: the call itself then reports that)."""
    name = model or settings.models.default
    if not is_base_model(settings, name, resolve=resolve, missing_ok=True):
        return None
    return (
        f"{name} is a base model: it continues text but cannot follow instructions, hold a "
        f"conversation or choose tools, so its answers are often nonsense; {CHAT_MODEL_HINT} "
        "(docs/models.md, 'Base models')"
    )
