"""How knowledge-base names reach people who are not on the server's machine.

Two rules every surface applies the same way: text shown to a reader (upload names, document
titles, citations) carries no invisible bidirectional or format controls — ``U+202E`` can make
``report\u202efdp.exe`` read as ``reportexe.pdf`` — and a source file is named relative to the
folder it was added from (``notes/2024/plan.md``), never by its absolute server path, which
would tell every API client the server's user names and directory layout. Only the CLI, on the
same machine, shows full paths.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import PurePath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hanlin.knowledge.search import SearchResult
    from hanlin.knowledge.stores.base import SourceRecord

#: zero-width (non-)joiners are format characters too, but Persian, Indic and emoji need them
_KEEP_FORMAT = frozenset({"\u200c", "\u200d"})


def clean_text(text: str) -> str:
    """``text`` without bidi overrides, isolates, marks and other invisible format characters
    (Unicode category Cf), except the zero-width joiners that scripts need."""
    if text.isascii():
        return text
    return "".join(ch for ch in text if ch in _KEEP_FORMAT or unicodedata.category(ch) != "Cf")


def is_url(source: str) -> bool:
    return "://" in source


def public_source(source: str, roots: Iterable[str], names: Mapping[str, str] = {}) -> str:
    """The name API clients see for ``source`` (a path or URL the knowledge base records).

    ``names`` maps stored paths to the name they were uploaded under; ``roots`` are the
    sources (folders and files) the knowledge base was given. A file under a folder root is
    shown as ``<folder name>/<path inside it>``; any other path by its file name alone. URLs
    are public already and are shown as they are.
    """
    shown = names.get(source)
    if shown:
        return clean_text(shown)
    if is_url(source):
        return clean_text(source)
    best = ""
    for root in roots:
        if is_url(root) or len(root) <= len(best):
            continue
        if source == root or source.startswith(root.rstrip(os.sep) + os.sep):
            best = root
    if best and best != source:
        rel = os.path.relpath(source, best)
        return clean_text(str(PurePath(PurePath(best).name, rel)))
    return clean_text(PurePath(source).name or source)


class SourceNames:
    """The public names of one knowledge base's sources, documents and titles (see the module
    docstring). Built once per request from the knowledge base's source list."""

    def __init__(self, sources: Iterable[SourceRecord]) -> None:
        listed = list(sources)
        self.roots = [s.uri for s in listed]
        self.names = {
            s.uri: str(s.options["display_name"]) for s in listed if s.options.get("display_name")
        }

    def source(self, source: str) -> str:
        return public_source(source, self.roots, self.names)

    def key(self, key: str) -> str:
        """A document key (``<path>`` or ``<path>#<record>``) with its path made public."""
        path, sep, record = key.partition("#") if not is_url(key) else (key, "", "")
        return self.source(path) + sep + clean_text(record)

    def scrub(self, text: str | None) -> str | None:
        """A message (a failure reason) with any source path in it replaced by its public
        name — loaders' errors can quote the path they failed to read."""
        if not text:
            return text
        for root in sorted(self.roots, key=len, reverse=True):
            if not is_url(root) and root in text:
                text = text.replace(root, self.source(root))
        return clean_text(text)

    def apply(self, results: Iterable[SearchResult]) -> None:
        """Rename the sources, document keys and titles of search results in place."""
        for r in results:
            c = r.chunk
            c.source, c.doc_key, c.title = (
                self.source(c.source),
                self.key(c.doc_key),
                clean_text(c.title),
            )
            c.heading_path = [clean_text(h) for h in c.heading_path]
            if isinstance(c.metadata.get("source"), str):
                c.metadata = c.metadata | {"source": self.source(c.metadata["source"])}
