"""The registry as Hanlin uses it: a store with the built-in prompts seeded, a cache that sees
changes without a restart, the checks a new version and a label move must pass, rendering, and
the fall-back to the bundled files when the store cannot be read.

Reading is cheap: a version read once is kept, and the store's generation (one number that
every change raises) is checked at most every ``refresh_s`` seconds; a change made through this
library is seen at once. A reader of a built-in prompt never fails because of the registry: when
the store is down or damaged it gets the bundled text, with a note saying why (logged once).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hanlin.errors import HanlinError, InvalidInputError, NotFoundError
from hanlin.prompts.base import (
    PRODUCTION,
    LabelMove,
    ModelConfig,
    NewVersion,
    PromptStore,
    PromptSummary,
    PromptVersion,
    Variable,
    check_label,
    check_name,
)
from hanlin.prompts.builtin import BY_NAME, BuiltinPrompt, bundled_text, seeds
from hanlin.prompts.diff import diff_versions
from hanlin.prompts.template import check_values, declare, fill

log = logging.getLogger("hanlin.prompts")


@dataclass(frozen=True, slots=True)
class Resolved:
    """A prompt ready to fill: the version a label points at, or the bundled text."""

    name: str
    text: str
    variables: tuple[Variable, ...]
    #: the label asked for (a prompt without it is read at ``production``)
    label: str
    #: None: the bundled file, not a stored version
    version: int | None
    #: whether the text is Hanlin's own (a built-in version, or the bundled file)
    builtin: bool
    config: ModelConfig | None = None
    #: why the bundled text is used instead of the registry's, for an answer's notes
    note: str | None = None

    @property
    def ref(self) -> str:
        """``rag.answer.en@2``, or ``rag.answer.en (bundled)``."""
        return f"{self.name}@{self.version}" if self.version else f"{self.name} (bundled)"

    def fill(self, **values: Any) -> str:
        """The text with ``values`` filled in (optional variables take their defaults; values
        the text does not use are ignored: Hanlin's callers pass what the built-in needs)."""
        defaults = {v.name: "" if v.default is None else v.default for v in self.variables}
        return fill(self.text, defaults | values)


class PromptLibrary:
    """One prompt store as Hanlin reads and changes it (see the module's docstring). Shared per
    process and store: :func:`hanlin.prompts.prompt_library`."""

    def __init__(self, store: PromptStore, *, refresh_s: float = 1.0) -> None:
        self.store = store
        self.refresh_s = refresh_s
        self._lock = threading.RLock()
        self._cache: dict[tuple[str, str], PromptVersion | NotFoundError] = {}
        self._generation: int | None = None
        self._checked = -math.inf
        self._failed_until = -math.inf
        self._failure: Exception | None = None
        self._seeded = False
        self._reported = False

    # --- reading Hanlin's own prompts ---------------------------------------------------------

    def resolve(self, name: str, label: str = PRODUCTION) -> Resolved:
        """The text of ``name`` at ``label`` (a prompt without that label: at ``production``).

        For a built-in prompt this never raises: when the store cannot be read, or the version
        needs a variable Hanlin does not fill, the bundled text comes back with a ``note``.
        Other prompts raise :class:`NotFoundError` or the store's error. May read the store
        (blocking); :meth:`resolve_cached` never does."""
        found = self._resolve(name, label, block=True)
        assert found is not None
        return found

    def resolve_cached(self, name: str, label: str = PRODUCTION) -> Resolved | None:
        """:meth:`resolve` when it needs no I/O (the cache holds the prompt and no check of
        the store is due), else None: safe to call on an event loop."""
        return self._resolve(name, label, block=False)

    def _resolve(self, name: str, label: str, *, block: bool) -> Resolved | None:
        builtin = BY_NAME.get(name)
        try:
            found = self._lookup(name, label, block)
            if isinstance(found, NotFoundError) and label != PRODUCTION:
                found = self._lookup(name, PRODUCTION, block)
            if found is None:
                return None
            if isinstance(found, NotFoundError):
                raise found
        except NotFoundError:
            if builtin is None:
                raise
            return _bundled(builtin, label, None)
        except Exception as exc:  # the store is down or damaged: never fail a reader for it
            if builtin is None:
                raise
            return _bundled(builtin, label, self._report(exc))
        if builtin is not None:
            provided = builtin.provides()
            missing = [v.name for v in found.variables if v.required and v.name not in provided]
            if missing:
                note = (
                    f"prompt {name}@{found.version} needs the variable '{missing[0]}', which "
                    "Hanlin does not fill; used the bundled prompt instead"
                )
                return _bundled(builtin, label, note)
        return Resolved(
            name,
            found.text,
            tuple(found.variables),
            label,
            found.version,
            found.builtin,
            found.config,
        )

    def _lookup(self, name: str, label: str, block: bool) -> PromptVersion | NotFoundError | None:
        """The cached version (or the cached "not found"), reading the store when the cache
        is stale; ``block=False`` returns None instead of reading (or of waiting for a reader
        in another thread)."""
        now = time.monotonic()
        key = (name, label)
        if not block:
            if not self._lock.acquire(blocking=False):
                return None
            try:
                if now < self._failed_until or now - self._checked >= self.refresh_s:
                    return None
                return self._cache.get(key)
            finally:
                self._lock.release()
        with self._lock:
            if now < self._failed_until and self._failure is not None:
                raise self._failure  # failed a moment ago: do not wait on it again yet
            try:
                if now - self._checked >= self.refresh_s:
                    self.ready()
                    generation = self.store.generation()
                    if generation != self._generation:
                        self._cache.clear()
                        self._generation = generation
                    self._checked = now
                if key not in self._cache:
                    try:
                        self._cache[key] = self.store.get(name, label=label)
                    except NotFoundError as exc:
                        self._cache[key] = exc
            except Exception as exc:
                self._failure = exc
                self._failed_until = now + max(self.refresh_s, 1.0)
                raise
            self._reported = False
            return self._cache[key]

    def _report(self, exc: Exception) -> str:
        """The note for an answer made with the bundled prompts, and the log line (once per
        outage) with the error and what to do. The note names no path or database: answers
        go to API clients, the details stay in the server's log."""
        what = exc.message if isinstance(exc, HanlinError) else f"{type(exc).__name__}: {exc}"
        hint = (
            exc.hint
            if isinstance(exc, HanlinError) and exc.hint
            else "check database_url or HANLIN_HOME/prompts.sqlite"
        )
        with self._lock:
            if not self._reported:
                self._reported = True
                log.warning(
                    "the prompt registry cannot be read (%s); answers use the bundled prompts "
                    "until it can — %s",
                    what,
                    hint,
                )
        return (
            "the prompt registry cannot be read, so the answer used Hanlin's bundled prompts; "
            "`hanlin prompt ls` on the server shows the error and what to do"
        )

    def _invalidate(self) -> None:
        with self._lock:
            self._cache.clear()
            self._generation = None
            self._checked = -math.inf
            self._failed_until = -math.inf

    # --- the registry, for surfaces ------------------------------------------------------

    def ready(self) -> None:
        """Seed the built-in prompts (once per process; a read when they are all there)."""
        if not self._seeded:
            self.store.seed(seeds())
            self._seeded = True

    def get(
        self, name: str, *, version: int | None = None, label: str | None = None
    ) -> PromptVersion:
        """A version by number or label (``latest`` included), else the latest."""
        check_name(name)
        if label is not None:
            check_label(label)
        self.ready()
        return self.store.get(name, version=version, label=label)

    def versions(self, name: str) -> list[PromptVersion]:
        self.ready()
        return self.store.versions(check_name(name))

    def labels(self, name: str) -> dict[str, int]:
        self.ready()
        return self.store.labels(check_name(name))

    def label_history(self, name: str) -> list[LabelMove]:
        self.ready()
        return self.store.label_history(check_name(name))

    def create(
        self, name: str, new: NewVersion, author: str, *, label: str | None = None
    ) -> tuple[PromptVersion, bool]:
        """A new version, or the latest when identical: ``(version, created)``.

        Fields of the text that ``new`` does not declare keep the previous version's
        declaration, else become required strings. A new prompt's first version also gets
        ``production``; ``label`` is then pointed at the version (checked before anything is
        written). Raises :class:`InvalidInputError` for a bad name, template or label."""
        check_name(name)
        if label is not None:
            check_label(label, settable=True)
        self.ready()
        try:
            earlier = self.store.get(name).variables
        except NotFoundError:
            earlier = []
        new = declare(new, earlier)
        builtin = BY_NAME.get(name)
        if label is not None and builtin is not None:
            _check_fits(builtin, name, "the new version", new.variables)
        try:
            made, created = self.store.create(name, new, author)
            if created and made.version == 1:
                self.store.set_label(name, PRODUCTION, 1, author)
            if label is not None:
                self.store.set_label(name, label, made.version, author)
        finally:
            self._invalidate()
        return made, created

    def set_label(self, name: str, label: str, version: int, actor: str) -> LabelMove:
        """Point ``label`` at ``version``. For a built-in prompt, a version that needs a
        variable Hanlin does not fill is refused (the answer would have a hole)."""
        check_name(name)
        check_label(label, settable=True)
        self.ready()
        target = self.store.get(name, version=version)
        builtin = BY_NAME.get(name)
        if builtin is not None:
            _check_fits(builtin, name, f"version {version}", target.variables)
        try:
            return self.store.set_label(name, label, version, actor)
        finally:
            self._invalidate()

    def render(
        self,
        name: str,
        values: dict[str, Any],
        *,
        version: int | None = None,
        label: str | None = None,
    ) -> tuple[PromptVersion, str]:
        """The version and its text filled with ``values``, checked strictly (a missing,
        unknown or mistyped variable is an :class:`InvalidInputError` naming it)."""
        if version is None and label is None:
            label = PRODUCTION
        found = self.get(name, version=version, label=label)
        checked = check_values(f"{name}@{found.version}", found.variables, values)
        return found, fill(found.text, checked)

    def diff(self, name: str, old: int, new: int) -> str:
        """A unified diff of two versions: text, variables and model config."""
        return diff_versions(self.get(name, version=old), self.get(name, version=new))

    # last: inside the class body the name ``list`` is this method, not the builtin
    def list(self) -> list[PromptSummary]:
        """Every prompt, by name."""
        self.ready()
        return self.store.list()


def _bundled(builtin: BuiltinPrompt, label: str, note: str | None) -> Resolved:
    version = builtin.version()
    return Resolved(
        builtin.name,
        bundled_text(builtin.name),
        tuple(version.variables),
        label,
        None,
        True,
        note=note,
    )


def _check_fits(
    builtin: BuiltinPrompt, name: str, what: str, variables: Iterable[Variable]
) -> None:
    provided = builtin.provides()
    for v in variables:
        if v.required and v.name not in provided:
            raise InvalidInputError(
                f"{what} of '{name}' needs the variable '{v.name}', which Hanlin does not fill",
                hint=f"Hanlin fills {', '.join(sorted(provided)) or 'no variables'} here; "
                f"give '{v.name}' a default (--var {v.name}:{v.type}=…) or drop it",
                param="variables",
                code="prompt_incompatible",
                params={"name": name, "variable": v.name},
            )
