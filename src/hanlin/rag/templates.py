"""RAG's prompt templates and the language of a question.

The templates are prompts of the registry (:mod:`hanlin.prompts`): ``rag.answer.en``,
``rag.rewrite.zh``, ``rag.source`` … — ``{name}`` fields, one prompt per purpose and language,
version 1 being the file Hanlin ships (``hanlin/prompts/builtin/rag.*.txt``). An answer reads them
at a label (``production`` unless the knowledge base or the request names another) once, as
:class:`Templates`; a file of the same name in ``HANLIN_HOME/prompts/rag/`` (``answer.en.txt``)
still overrides a built-in version.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from hanlin.guard.untrusted import escape, wrap
from hanlin.prompts.base import ModelConfig
from hanlin.prompts.builtin import BUILTINS, bundled_text
from hanlin.prompts.library import PromptLibrary, Resolved
from hanlin.prompts.template import fields, fill
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


#: RAG's templates; each is the registry prompt ``rag.<name>.<zh|en>`` (``rag.source``: one)
NAMES = ("answer", "rewrite", "refuse", "extractive", "source")


def prompt_name(name: str, lang: Language) -> str:
    """The registry prompt of a template in a language: ``rag.answer.en``, ``rag.source``."""
    return "rag.source" if name == "source" else f"rag.{name}.{base_language(lang)}"


class Templates:
    """RAG's templates for one answer in one language, read from the prompt registry once (a
    label moved during an answer changes the next answer, not this one).

    A built-in version (or the bundled text the registry falls back to) gives way to a file of
    the same name in ``HANLIN_HOME/prompts/rag/`` (``answer.en.txt``), as before the registry;
    a version of your own wins over that file. Traditional Chinese questions get the Chinese
    templates converted to Traditional script.
    """

    def __init__(self, lang: Language, resolved: dict[str, Resolved], home: Path | None) -> None:
        self.lang = lang
        self.resolved = resolved
        self.home = home
        self._texts: dict[str, str] = {}

    @classmethod
    def read(
        cls, library: PromptLibrary | None, lang: Language, label: str, home: Path | None
    ) -> Templates:
        """Every template of ``lang`` at ``label`` (blocking: reads the registry when its cache
        is stale; run it in a thread). ``library`` None: the bundled texts."""
        if library is None:
            return cls(lang, {}, home)
        return cls(lang, {n: library.resolve(prompt_name(n, lang), label) for n in NAMES}, home)

    @classmethod
    def read_cached(
        cls, library: PromptLibrary, lang: Language, label: str, home: Path | None
    ) -> Templates | None:
        """:meth:`read` when the library's cache holds every template and no check of the
        store is due (no I/O: safe on an event loop), else None."""
        resolved = {}
        for n in NAMES:
            found = library.resolve_cached(prompt_name(n, lang), label)
            if found is None:
                return None
            resolved[n] = found
        return cls(lang, resolved, home)

    @property
    def notes(self) -> list[str]:
        """Why bundled texts were used instead of the registry's (each note once)."""
        return list(dict.fromkeys(r.note for r in self.resolved.values() if r.note))

    @property
    def refs(self) -> list[str]:
        """The versions used: ``rag.answer.en@2`` …"""
        return [r.ref for r in self.resolved.values()]

    def config(self, name: str) -> ModelConfig | None:
        found = self.resolved.get(name)
        return found.config if found is not None else None

    def text(self, name: str) -> str:
        """The template ``name`` (``answer``, ``source`` …) as this answer uses it."""
        cached = self._texts.get(name)
        if cached is not None:
            return cached
        found = self.resolved.get(name)
        text = found.text if found is not None else bundled_text(prompt_name(name, self.lang))
        if (found is None or found.builtin) and self.home is not None and name != "source":
            override = self.home / "prompts" / "rag" / f"{name}.{base_language(self.lang)}.txt"
            if override.is_file():
                text = override.read_text(encoding="utf-8").rstrip("\n")
        if self.lang == "zh-Hant" and name != "source":
            text = _convert(text, "s2t")
        self._texts[name] = text
        return text

    def render(self, name: str, **fields: object) -> str:
        """Fill a template's ``{name}`` fields (values are inserted verbatim)."""
        found = self.resolved.get(name)
        defaults: dict[str, object] = {}
        if found is not None:
            defaults = {v.name: "" if v.default is None else v.default for v in found.variables}
        return fill(self.text(name), defaults | fields)

    def source_block(self, n: int, where: str, text: str) -> str:
        """One numbered source as the answer prompt shows it (``rag.source``): its text is an
        untrusted block (:mod:`hanlin.guard.untrusted`) whatever the template, and its label
        cannot imitate a delimiter either."""
        return self.render("source", n=n, where=escape(where), text=wrap(text.strip()))


def template(name: str, lang: Language, home: Path | None = None) -> str:
    """The bundled template ``name`` (e.g. ``answer``) for a language, with the override from
    ``home``; Traditional Chinese questions get the Chinese template converted to Traditional
    script. (An answer reads the registry instead: :class:`Templates`.)"""
    return Templates(lang, {}, home).text(name)


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
    """Fill a bundled template's ``{name}`` fields (field values are inserted verbatim)."""
    return Templates(lang, {}, home).render(name, **fields)


def source_block(n: int, where: str, text: str) -> str:
    """One numbered source as the bundled ``rag.source`` shows it."""
    return Templates("en", {}, None).source_block(n, where, text)


@dataclass(frozen=True, slots=True)
class BundledTemplate:
    """A RAG template Hanlin ships (``hanlin/prompts/builtin/rag.*.txt``): its languages (none
    when one file serves them all, like ``source``) and its ``{fields}``."""

    name: str
    languages: tuple[str, ...]
    fields: tuple[str, ...]

    def text(self, lang: Language = "en", home: Path | None = None) -> str:
        """The template in ``lang``, with the override from ``home`` as :func:`template` finds
        it; a template without languages is its bundled file."""
        if not self.languages:
            return bundled_text(f"rag.{self.name}")
        return template(self.name, lang, home)


@lru_cache(maxsize=1)
def bundled_templates() -> tuple[BundledTemplate, ...]:
    """Every bundled RAG template, by name (``rag.answer.en`` and ``rag.answer.zh`` are one)."""
    found: dict[str, tuple[list[str], list[str]]] = {}
    for builtin in BUILTINS:
        parts = builtin.name.split(".")
        if parts[0] != "rag":
            continue
        base, lang = parts[1], (parts[2] if len(parts) == 3 else "")
        langs, known = found.setdefault(base, ([], []))
        if lang:
            langs.append(lang)
        known.extend(f for f in fields(builtin.text) if f not in known)
    return tuple(BundledTemplate(n, tuple(ls), tuple(fs)) for n, (ls, fs) in sorted(found.items()))
