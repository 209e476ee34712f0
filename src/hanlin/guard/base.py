"""What the PII guard is made of: entities found in text, the recognizer protocol, and the
registry recognizers are looked up in (built-ins and the ``hanlin.pii_recognizers`` entry-point
group alike).

A recognizer reads :func:`normalize`'s copy of the text — full-width letters, digits and spaces
folded to ASCII, one character for one, so every offset it reports is an offset into the
original text too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

from hanlin.registry import Registry

#: every entity type the built-in recognizers report, with what it is
ENTITY_TYPES: dict[str, str] = {
    "ID_CARD": "mainland resident ID number (18 digits with check, or legacy 15)",
    "PHONE": "mainland mobile number (+86 / 0086 and separators allowed)",
    "LANDLINE": "mainland landline number with its area code",
    "BANK_CARD": "bank card number (16-19 digits, card-scheme prefix, Luhn check)",
    "USCC": "Unified Social Credit Code (GB 32100-2015 check)",
    "PASSPORT": "PRC passport number",
    "PERMIT": "Hong Kong / Macau / Taiwan travel permit number",
    "PLATE": "mainland licence plate (new-energy plates included)",
    "EMAIL": "e-mail address",
    "IP": "IPv4 or IPv6 address",
    "URL_CREDENTIALS": "user:password inside a URL",
    "SECRET": "API key, token or private key of a known shape",
    "PERSON": "person name (opt-in recognizer)",
}

#: what the ``hanlin.pii_recognizers`` group and code register: a class (or factory) that
#: builds a recognizer without arguments
RECOGNIZERS: Registry[Callable[[], Recognizer]] = Registry(
    "PII recognizer",
    "hanlin.pii_recognizers",
    hint="set guard.recognizers in hanlin.toml; plugins register under hanlin.pii_recognizers",
)


@dataclass(frozen=True, slots=True)
class Entity:
    """One piece of personal data: ``text[start:end]`` is ``value``, of type ``kind``."""

    kind: str
    start: int
    end: int
    value: str


@runtime_checkable
class Recognizer(Protocol):
    """Finds entities of its ``entities`` types in (normalized) text.

    ``find`` gets the normalized text and returns spans into it; the detector takes the values
    from the original. ``default`` says whether the recognizer runs when ``guard.recognizers``
    does not name recognizers explicitly (slow or model-based ones are opt-in). Constructing
    one is cheap; load a model on the first ``find``.
    """

    name: ClassVar[str]
    entities: ClassVar[tuple[str, ...]]
    default: ClassVar[bool]

    def find(self, text: str) -> Iterable[tuple[str, int, int]]:
        """(entity type, start, end) of each entity found."""
        ...


# full-width ASCII (U+FF01-U+FF5E) and the ideographic space, folded one for one
_FOLD = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
_FULL_WIDTH = re.compile("[\uff01-\uff5e\u3000]")


def normalize(text: str) -> str:
    """``text`` with full-width forms folded to ASCII; the same length, so offsets carry over."""
    return text.translate(_FOLD) if _FULL_WIDTH.search(text) else text
