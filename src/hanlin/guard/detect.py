"""Finding personal data in text: the recognizers a policy names, run over the normalized text,
their overlaps resolved.

Where two findings overlap, the one that starts first wins, then the longer one, then the one
of the recognizer listed first (an 18-digit number that is both a valid ID number and a
Luhn-valid card number is an ID number).
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence

from hanlin.errors import ConfigError
from hanlin.guard import names as _names  # noqa: F401  (registers the opt-in recognizers)
from hanlin.guard.base import ENTITY_TYPES, RECOGNIZERS, Entity, Recognizer, normalize
from hanlin.guard.recognizers import BUILTIN


class Detector:
    """Runs recognizers over text; ``entities`` (empty: all) keeps only those types."""

    def __init__(self, recognizers: Sequence[Recognizer], entities: Collection[str] = ()) -> None:
        self.recognizers = list(recognizers)
        wanted = set(entities)
        if wanted:
            self.recognizers = [r for r in self.recognizers if wanted & set(r.entities)]
        self.entities = frozenset(wanted)

    @property
    def kinds(self) -> set[str]:
        """The entity types this detector can report."""
        found = {k for r in self.recognizers for k in r.entities}
        return found & self.entities if self.entities else found

    def find(self, text: str) -> list[Entity]:
        """Entities in ``text``, in order, none overlapping."""
        if not text:
            return []
        norm = normalize(text)
        found: list[tuple[int, int, int, str]] = []
        for rank, recognizer in enumerate(self.recognizers):
            for kind, start, end in recognizer.find(norm):
                if end > start and (not self.entities or kind in self.entities):
                    found.append((start, -(end - start), rank, kind))
        found.sort()
        out: list[Entity] = []
        last_end = 0
        for start, neg_len, _, kind in found:
            if start >= last_end:
                end = start - neg_len
                out.append(Entity(kind, start, end, text[start:end]))
                last_end = end
        return out


def recognizer_names() -> list[str]:
    """Every registered recognizer: the built-ins, opt-in ones and installed plugins."""
    return RECOGNIZERS.names()


@functools.lru_cache(maxsize=32)
def detector(recognizers: tuple[str, ...] = (), entities: tuple[str, ...] = ()) -> Detector:
    """The detector for recognizer names (empty: every recognizer whose ``default`` is true, in
    the built-in priority order, then plugins) and entity types (empty: all). Shared per
    process: recognizers hold no per-text state.

    Raises :class:`~hanlin.errors.NotFoundError` for an unknown recognizer name and
    :class:`~hanlin.errors.ConfigError` for an entity type no recognizer reports."""
    if recognizers:
        chosen = [RECOGNIZERS.lookup(n)() for n in recognizers]
    else:
        builtin = {cls.name for cls in BUILTIN}
        chosen = [cls() for cls in BUILTIN]
        chosen += [
            cls()
            for n in RECOGNIZERS.names()
            if n not in builtin and getattr(cls := RECOGNIZERS[n], "default", False)
        ]
    known = {k for r in chosen for k in r.entities} | set(ENTITY_TYPES)
    unknown = sorted(set(entities) - known)
    if unknown:
        raise ConfigError(
            f"unknown PII entity types: {', '.join(unknown)}",
            hint=f"guard.entities takes: {', '.join(sorted(known))}",
        )
    return Detector(chosen, entities)
