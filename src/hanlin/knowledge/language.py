"""A knowledge base's language, and the embedding model chosen for it.

With ``knowledge.embedding_model = "auto"`` (the default) a new knowledge base gets its embedding
model from its language: ``knowledge.language`` (or ``hanlin kb create --language``) when it
names one, otherwise detected from the first documents ingested. The choice follows
``knowledge.language_embedders`` (language → registered embedder name, ``"*"`` for every other
language and for mixed ones) and is recorded in the knowledge base, so queries always use the
model its vectors came from. Knowledge bases that already record a model keep it.

Detection is by script and, for Latin script, by English function words: a knowledge base is
``en`` only when its Latin-script text reads as English (a French or German corpus is not), and
``mixed`` when no language has nine tenths of it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping

from hanlin.config import KnowledgeSettings
from hanlin.errors import InvalidInputError
from hanlin.knowledge.stores.base import Store
from hanlin.models.embeddings.base import EMBEDDERS, EmbeddingModel

#: how much text detection reads (the first documents are enough)
SAMPLE_CHARS = 200_000
#: a language needs this share of the (weighted) letters
_DOMINANT = 0.9
#: one Han character carries about as much as a short Latin word
_HAN_WEIGHT = 3
#: English text: function words are about a quarter of its words (scientific prose ~20 %);
#: in French, German or Spanish they are a few percent
_ENGLISH_SHARE = 0.08
_ENGLISH = frozenset(
    (
        "the",
        "of",
        "and",
        "to",
        "in",
        "is",
        "was",
        "that",
        "for",
        "with",
        "are",
        "this",
        "by",
        "as",
        "on",
        "be",
        "from",
        "which",
        "or",
        "at",
        "an",
        "it",
        "were",
        "we",
        "these",
        "not",
        "have",
        "has",
        "been",
        "their",
        "its",
        "than",
        "can",
        "they",
        "our",
    )
)
_HAN_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_KANA_HANGUL_RE = re.compile(r"[\u3040-\u30ff\uac00-\ud7af]")
_LATIN_WORD_RE = re.compile(r"[A-Za-z]+")
_LETTER_RE = re.compile(r"[^\W\d_]")

_LANGUAGE_RE = re.compile(r"^[a-z]{2,8}$")


def detect_language(texts: Iterable[str], sample_chars: int = SAMPLE_CHARS) -> str:
    """``en``, ``zh``, ``mixed`` (no language has nine tenths) or ``other`` (another script,
    or Latin script that is not English); ``mixed`` too when there is no text at all."""
    han = latin = other = 0
    words = english = 0
    seen = 0
    for text in texts:
        text = text[: sample_chars - seen]
        seen += len(text)
        n_han = len(_HAN_RE.findall(text))
        n_kana = len(_KANA_HANGUL_RE.findall(text))
        latin_words = _LATIN_WORD_RE.findall(text)
        n_latin = sum(map(len, latin_words))
        han += n_han
        latin += n_latin
        other += len(_LETTER_RE.findall(text)) - n_han - n_latin - n_kana + n_kana * _HAN_WEIGHT
        words += len(latin_words)
        english += sum(1 for w in latin_words if w.lower() in _ENGLISH)
        if seen >= sample_chars:
            break
    total = latin + han * _HAN_WEIGHT + other
    if total == 0:
        return "mixed"
    if han * _HAN_WEIGHT >= _DOMINANT * total:
        return "zh"
    if latin >= _DOMINANT * total:
        return "en" if words and english / words >= _ENGLISH_SHARE else "other"
    if other >= _DOMINANT * total:
        return "other"
    return "mixed"


def check_language(language: str) -> str:
    """``language`` when it is ``auto`` or a language code (``en``, ``zh``, ``mixed``, …)."""
    if not _LANGUAGE_RE.match(language):
        raise InvalidInputError(
            f"invalid language {language!r}",
            hint="use auto (detect it from the first documents), en, zh, mixed or another code",
        )
    return language


def embedder_for(language: str, table: Mapping[str, str]) -> str:
    """The embedder ``table`` names for ``language`` (``"*"`` otherwise), when it is registered
    and installed; else the ``"*"`` entry (``fast-use`` unless configured)."""
    fallback = table.get("*", "fast-use")
    name = table.get(language, fallback)
    if name != fallback and not _installed(name):
        return fallback
    return name


def configured_model(ks: KnowledgeSettings) -> str:
    """``knowledge.embedding_model``, with ``auto`` as the ``"*"`` model (a knowledge base
    recording no model of its own)."""
    auto = ks.embedding_model == "auto"
    return embedder_for("*", ks.language_embedders) if auto else ks.embedding_model


def _installed(name: str) -> bool:
    """Registered, and its optional packages present (an embedder class may say so with a
    static ``installed()``; one without it is taken as installed)."""
    if name not in EMBEDDERS:
        return False
    check = getattr(EMBEDDERS[name], "installed", None)
    return bool(check()) if callable(check) else True


def record_choice(
    store: Store,
    texts: list[str],
    table: Mapping[str, str],
    load: Callable[[str], EmbeddingModel],
) -> str:
    """For a knowledge base whose model is still to be chosen (meta ``embedding_choice`` =
    ``pending``) and that has no chunks yet: detect the language of ``texts``, record it and
    the model ``table`` names for it (``load`` instantiates it). Returns the recorded model,
    which another process may have chosen meanwhile."""
    with store.locked():
        if store.get_meta("embedding_choice") == "pending":
            if store.stats().chunks == 0:
                lang = detect_language(texts)
                model = load(embedder_for(lang, table))
                store.set_meta("embedding_model", model.name)
                store.set_meta("embedding_space", f"{model.name}@{model.version}")
                store.set_meta("embedding_dim", str(model.dim))
                store.set_meta("language", lang)
            store.set_meta("embedding_choice", "detected")
        return store.get_meta("embedding_model") or table.get("*", "fast-use")
