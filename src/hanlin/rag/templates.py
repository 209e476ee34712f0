"""Prompt templates (files under ``hanlin/rag/prompts/``) and the language of a question.

Templates are plain text with ``{name}`` fields, one file per purpose and language
(``answer.zh.txt``, ``rewrite.en.txt`` …). A file of the same name in
``HANLIN_HOME/prompts/rag/`` overrides the bundled one, so wording can be tuned without code.
"""

from __future__ import annotations

import re
import string
import threading
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

from hanlin.text import CJK

Language = Literal["zh", "zh-Hant", "en"]

_CJK_RE = re.compile(rf"[{CJK}]")
_LATIN_RE = re.compile(r"[A-Za-z\u00c0-\u024f]")
_t2s_lock = threading.Lock()


@lru_cache(maxsize=4)
def _opencc(config: str) -> object:
    import opencc

    return opencc.OpenCC(config)


def _convert(text: str, config: str) -> str:
    converter = _opencc(config)
    with _t2s_lock:  # OpenCC objects are not documented as thread-safe
        out: str = converter.convert(text)  # type: ignore[attr-defined]
    return out


def detect_language(text: str) -> Language:
    """``zh`` / ``zh-Hant`` when CJK characters carry the text, else ``en``.

    One CJK character weighs about as much as four Latin letters (a word), so "RAG 是什么？"
    is Chinese and "What does 翰林 mean?" is English. Traditional script is detected by
    converting to Simplified: if that changes the text, it was Traditional.
    """
    cjk = _CJK_RE.findall(text)
    latin = len(_LATIN_RE.findall(text))
    if not cjk or len(cjk) * 4 < latin:
        return "en"
    han = "".join(cjk)
    if _convert(han, "t2s") != han:
        return "zh-Hant"
    return "zh"


def base_language(lang: Language) -> Literal["zh", "en"]:
    return "zh" if lang.startswith("zh") else "en"


@lru_cache(maxsize=64)
def _bundled(name: str) -> str:
    return resources.files("hanlin.rag").joinpath("prompts", name).read_text(encoding="utf-8")


def template(name: str, lang: Language, home: Path | None = None) -> str:
    """The template ``name`` (e.g. ``answer``) for a language; Traditional Chinese questions get
    the Chinese template converted to Traditional script."""
    base = base_language(lang)
    filename = f"{name}.{base}.txt"
    text: str | None = None
    if home is not None:
        override = home / "prompts" / "rag" / filename
        if override.is_file():
            text = override.read_text(encoding="utf-8")
    if text is None:
        text = _bundled(filename)
    text = text.rstrip("\n")
    if lang == "zh-Hant":
        text = _convert(text, "s2t")
    return text


#: short labels surfaces print around an answer, per language (Traditional is converted)
_LABELS = {
    "sources": {"en": "sources", "zh": "来源"},
    "closest": {"en": "closest sources", "zh": "最接近的资料"},
}


def label(key: str, lang: Language) -> str:
    """A label (``sources``, ``closest``) in the question's language and script."""
    text = _LABELS[key][base_language(lang)]
    return _convert(text, "s2t") if lang == "zh-Hant" else text


def render(name: str, lang: Language, home: Path | None = None, **fields: object) -> str:
    """Fill a template's ``{name}`` fields (field values are inserted verbatim)."""
    return template(name, lang, home).format(**fields)


def source_block(n: int, where: str, text: str) -> str:
    """One numbered source as the answer prompt shows it (``source.txt``)."""
    return _bundled("source.txt").rstrip("\n").format(n=n, where=where, text=text.strip())


@dataclass(frozen=True, slots=True)
class BundledTemplate:
    """A template shipped in ``hanlin/rag/prompts/``: its languages (none when one file serves
    them all, like ``source``) and its ``{fields}``."""

    name: str
    languages: tuple[str, ...]
    fields: tuple[str, ...]

    def text(self, lang: Language = "en", home: Path | None = None) -> str:
        """The template in ``lang``, with the override from ``home`` as :func:`template` finds
        it; a template without languages is its bundled file."""
        if not self.languages:
            return _bundled(f"{self.name}.txt").rstrip("\n")
        return template(self.name, lang, home)


@lru_cache(maxsize=1)
def bundled_templates() -> tuple[BundledTemplate, ...]:
    """Every bundled template, by name (``answer.en.txt`` and ``answer.zh.txt`` are one)."""
    found: dict[str, tuple[list[str], list[str]]] = {}
    for entry in sorted(resources.files("hanlin.rag").joinpath("prompts").iterdir(), key=str):
        parts = entry.name.split(".")
        if len(parts) < 2 or parts[-1] != "txt":
            continue
        base, lang = parts[0], (parts[1] if len(parts) == 3 else "")
        fields = [f for _, f, _, _ in string.Formatter().parse(entry.read_text("utf-8")) if f]
        langs, known = found.setdefault(base, ([], []))
        if lang:
            langs.append(lang)
        known.extend(f for f in fields if f not in known)
    return tuple(BundledTemplate(n, tuple(ls), tuple(fs)) for n, (ls, fs) in found.items())
