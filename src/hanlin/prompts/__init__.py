"""The prompt registry: named templates with typed variables, immutable versions, labels that
move (``production``, ``staging``, any other) with their history kept, and diffs between
versions. RAG and agents read their prompts from it by name and label, so a new version can be
tried and then promoted by moving a label — no code change, no restart. See docs/prompts.md.

The protocol and types are in ``base.py``, the SQLite store in ``sqlite.py`` and the PostgreSQL
one (``database_url`` set) in ``postgres.py``; :func:`open_prompts` picks one, and
:func:`prompt_library` is the process's shared :class:`~hanlin.prompts.library.PromptLibrary`
over it (cache, built-ins, checks, fall-back).
"""

from __future__ import annotations

import threading

from hanlin.config import Settings
from hanlin.prompts.base import (
    BUILTIN_AUTHOR,
    LATEST,
    PRODUCTION,
    LabelMove,
    ModelConfig,
    NewVersion,
    PromptStore,
    PromptSummary,
    PromptVersion,
    Variable,
)
from hanlin.prompts.library import PromptLibrary, Resolved
from hanlin.prompts.sqlite import SqlitePrompts

__all__ = [
    "BUILTIN_AUTHOR",
    "LATEST",
    "PRODUCTION",
    "LabelMove",
    "ModelConfig",
    "NewVersion",
    "PromptLibrary",
    "PromptStore",
    "PromptSummary",
    "PromptVersion",
    "Resolved",
    "SqlitePrompts",
    "Variable",
    "open_prompts",
    "prompt_library",
]

_libraries: dict[str, PromptLibrary] = {}
_libraries_lock = threading.Lock()


def open_prompts(settings: Settings) -> PromptStore:
    """The prompt store of these settings: the app directory's SQLite file, or the database
    of ``database_url`` (cheap: opens on first use)."""
    if settings.database_url:
        from hanlin.prompts.postgres import PostgresPrompts

        return PostgresPrompts(settings.database_url)
    return SqlitePrompts.from_settings(settings)


def prompt_library(settings: Settings) -> PromptLibrary:
    """This process's library over the store of ``settings`` — one per store, like the
    database's connection pool, so a version created or a label moved here (the CLI, a route)
    is what the next answer here reads."""
    key = settings.database_url or str(settings.home.resolve() / "prompts.sqlite")
    with _libraries_lock:
        library = _libraries.get(key)
        if library is None:
            library = _libraries[key] = PromptLibrary(
                open_prompts(settings), refresh_s=settings.prompts.refresh_s
            )
        return library
