"""Sensitive-term banks: data files of terms, each bank with a category and an action
(``block``, ``mask``, ``flag``), matched all at once with an Aho-Corasick automaton
(pyahocorasick) over a normalised copy of the text.

Normalisation folds full-width forms to ASCII, case, Traditional to Simplified Chinese
(OpenCC ``t2s``, character by character) and drops everything that is not a letter or digit, so
``網 路 賭 場``, ``ＯＮＬＩＮＥ Casino`` and ``o-n-l-i-n-e c.a.s.i.n.o`` all match. A term
made of ASCII letters and digits only matches at word boundaries of the original text (``ass``
is not found in ``class``); Chinese terms match anywhere.

Bank format (docs/guard.md): a ``.yaml`` file holding one bank or a list of them
(``category``, ``action``, ``terms``), or a ``.txt`` file with one term per line, ``#`` comments,
and optional ``# category: …`` / ``# action: …`` header lines (the category defaults to the
file's name, the action to ``flag``).
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from hanlin.errors import ConfigError
from hanlin.guard.base import normalize
from hanlin.text import CJK

Action = Literal["block", "mask", "flag"]
ACTIONS: tuple[Action, ...] = ("block", "mask", "flag")
#: the bank Hanlin ships (mild placeholder terms), named ``sample`` in ``guard.term_banks``
SAMPLE = "sample"

_JUNK = re.compile(r"[\W_]+")
_KEEP = re.compile(r"[^\W_]")
_HAN = re.compile(rf"[{CJK}]")
_HEADER = re.compile(r"^#\s*(category|action)\s*:\s*(\S.*?)\s*$", re.IGNORECASE)
_t2s_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Bank:
    category: str
    action: Action
    terms: tuple[str, ...]
    source: str = ""


@dataclass(frozen=True, slots=True)
class TermHit:
    """A bank's term at ``text[start:end]``: its rule id (``TERM:<category>``) and action."""

    rule: str
    category: str
    action: Action
    start: int
    end: int


@functools.cache
def _opencc() -> Any:
    import opencc

    return opencc.OpenCC("t2s")


@functools.cache
def _traditional() -> tuple[dict[int, str], re.Pattern[str]]:
    """The characters ``t2s`` changes (read once from OpenCC over the CJK blocks) and a class
    that finds them: most text has none and is never converted."""
    table: dict[int, str] = {}
    for lo, hi in ((0x3400, 0x4DC0), (0x4E00, 0xA000), (0xF900, 0xFB00)):
        block = "".join(chr(c) for c in range(lo, hi))
        with _t2s_lock:
            out = _opencc().convert(block)
        if len(out) == len(block):
            table.update((ord(a), b) for a, b in zip(block, out, strict=True) if a != b)
    chars = "".join(chr(c) for c in table)
    return table, re.compile(f"[{re.escape(chars)}]" if chars else "(?!)")


def _t2s(text: str) -> str:
    """Simplified script, one character for one."""
    table, found = _traditional()
    if not found.search(text):
        return text
    with _t2s_lock:  # OpenCC objects are not documented as thread-safe
        out: str = _opencc().convert(text)
    if len(out) != len(text):  # a phrase conversion changed the length: by character
        out = text.translate(table)
    return out


_FULL_ALNUM = re.compile("[\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]")


def _folded(text: str) -> str:
    if _FULL_ALNUM.search(text):
        text = normalize(text)
    low = text.lower()
    if len(low) != len(text):  # a few characters lower-case to two ("İ")
        low = "".join(c if len(c.lower()) != 1 else c.lower() for c in text)
    return low


def skeleton(text: str) -> str:
    """The form terms are matched in: letters and digits only, full-width folded, lower case,
    Simplified script — one character for each letter or digit of ``text``."""
    return _t2s(_folded(_JUNK.sub("", text)))


def positions(text: str) -> list[int]:
    """For each character of ``skeleton(text)``, its offset in ``text``."""
    return [m.start() for m in _KEEP.finditer(text)]


def _ascii_word(term: str) -> bool:
    return term.isascii()


def load_bank(path: Path) -> list[Bank]:
    """The banks in one file (``.yaml``/``.yml`` or ``.txt``). Raises ConfigError."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(
            f"cannot read term bank {path}: {exc.strerror or exc}",
            hint="fix guard.term_banks in hanlin.toml",
        ) from exc
    if path.suffix.lower() in (".yaml", ".yml"):
        return _yaml_banks(text, path)
    category, action, terms = path.stem, "flag", []
    for line in text.splitlines():
        line = line.strip()
        header = _HEADER.match(line)
        if header:
            key, value = header.group(1).lower(), header.group(2)
            if key == "category":
                category = value
            else:
                action = value.lower()
            continue
        if line and not line.startswith("#"):
            terms.append(line)
    return [_bank(category, action, terms, str(path))]


def _yaml_banks(text: str, path: Path) -> list[Bank]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"term bank {path} is not valid YAML: {exc}") from exc
    items = data if isinstance(data, list) else [data]
    banks: list[Bank] = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("terms"), list):
            raise ConfigError(
                f"term bank {path}: each bank needs category, action and a list of terms",
                hint="see the bank format in docs/guard.md",
            )
        category = str(item.get("category") or path.stem)
        terms = [str(t) for t in item["terms"]]
        banks.append(_bank(category, str(item.get("action", "flag")).lower(), terms, str(path)))
    return banks


def _bank(category: str, action: str, terms: list[str], source: str) -> Bank:
    if action not in ACTIONS:
        raise ConfigError(
            f"term bank {source}: unknown action {action!r} for {category}",
            hint="the action is one of block, mask, flag",
        )
    return Bank(category, action, tuple(t for t in terms if t.strip()), source)


def bank_files(spec: str) -> list[Path]:
    """The files a ``guard.term_banks`` entry names: ``sample``, a file, or a folder's
    ``.txt``/``.yaml`` files."""
    if spec == SAMPLE:
        return [Path(__file__).parent / "banks" / "sample.yaml"]
    path = Path(spec).expanduser()
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix.lower() in (".txt", ".yaml", ".yml"))
    if not path.is_file():
        raise ConfigError(
            f"term bank not found: {spec}",
            hint="guard.term_banks takes files, folders, or 'sample'",
        )
    return [path]


class TermMatcher:
    """Every term of some banks in one automaton; :meth:`find` reports hits in text."""

    def __init__(self, banks: Sequence[Bank]) -> None:
        import ahocorasick

        self.banks = list(banks)
        entries: dict[str, list[tuple[str, Action, bool]]] = {}
        for bank in banks:
            for term in bank.terms:
                key = skeleton(term)
                if key:
                    entries.setdefault(key, []).append(
                        (bank.category, bank.action, _ascii_word(term))
                    )
        self.automaton = ahocorasick.Automaton()
        for key, value in entries.items():
            self.automaton.add_word(key, (len(key), tuple(value)))
        #: the longest term, in normalised characters
        self.longest = max((len(k) for k in entries), default=0)
        if entries:
            self.automaton.make_automaton()

    @classmethod
    def from_specs(cls, specs: Iterable[str]) -> TermMatcher:
        return cls([b for spec in specs for path in bank_files(spec) for b in load_bank(path)])

    def __bool__(self) -> bool:
        return self.longest > 0

    def find(self, text: str, before: str = "") -> list[TermHit]:
        """Hits in ``text``, by position; overlapping hits all reported. ``before``: the
        character preceding ``text`` (for the word-boundary check of a stream)."""
        if not self or not text:
            return []
        skel = skeleton(text)
        raw = list(self.automaton.iter(skel)) if skel else []
        if not raw:
            return []
        pos = positions(text)
        hits: list[TermHit] = []
        for end, (length, entries) in raw:
            start_o, end_o = pos[end - length + 1], pos[end] + 1
            for category, action, ascii_word in entries:
                if ascii_word and not _at_word_bounds(text, start_o, end_o, before):
                    continue
                hits.append(TermHit(f"TERM:{category}", category, action, start_o, end_o))
        hits.sort(key=lambda h: (h.start, -h.end))
        return hits

    def prefix_start(self, text: str) -> int:
        """Where the end of ``text`` starts that could still grow into a term (``len(text)``
        when none could): the earliest suffix whose normalised form begins a term."""
        if not self:
            return len(text)
        skel = skeleton(text)
        if not skel:
            return len(text)
        pos = positions(text)
        first = max(0, len(skel) - self.longest + 1)
        for i in range(first, len(skel)):
            at = pos[i]
            prev = text[at - 1] if at else ""
            if skel[i].isascii() and prev.isascii() and prev.isalnum():
                continue  # inside a word: an ASCII term cannot start here
            if self.automaton.match(skel[i:]):
                return at
        return len(text)


def _at_word_bounds(text: str, start: int, end: int, before: str) -> bool:
    prev = text[start - 1] if start else before
    nxt = text[end] if end < len(text) else ""
    return not (prev.isascii() and prev.isalnum()) and not (nxt.isascii() and nxt.isalnum())


def mask(text: str, hits: Iterable[TermHit]) -> str:
    """``text`` with the hits' spans replaced by ``*`` (the length stays the same)."""
    chars = list(text)
    for h in hits:
        chars[h.start : h.end] = "*" * (h.end - h.start)
    return "".join(chars)
