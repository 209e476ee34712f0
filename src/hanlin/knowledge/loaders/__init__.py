"""Loaders turn files and byte strings into :class:`~hanlin.knowledge.base.LoadedDocument` s.

A loader is picked by file extension (or by content type for URLs) from a registry; the built-in
loaders below register themselves on import, exactly as a plugin would with
:func:`register_loader`. Every loader guarantees ``doc.text[b.start:b.end] == b.text`` for its
blocks, and raises :class:`hanlin.errors.LoaderError` with a hint for input it cannot use.
"""

from __future__ import annotations

# Built-in loaders: imported for their registration side effect.
from hanlin.knowledge.loaders import (  # noqa: F401
    code,
    docx,
    html,
    markdown,
    pdf,
    structured,
    text,
)
from hanlin.knowledge.loaders.api import load_bytes, load_file
from hanlin.knowledge.loaders.builder import DocBuilder, render_table, split_paragraphs
from hanlin.knowledge.loaders.encoding import DecodedText, decode_text
from hanlin.knowledge.loaders.options import LoaderOptions
from hanlin.knowledge.loaders.registry import (
    LoaderFn,
    LoadRequest,
    is_supported,
    register_loader,
    supported_extensions,
)

__all__ = [
    "DecodedText",
    "DocBuilder",
    "LoadRequest",
    "LoaderFn",
    "LoaderOptions",
    "decode_text",
    "is_supported",
    "load_bytes",
    "load_file",
    "register_loader",
    "render_table",
    "split_paragraphs",
    "supported_extensions",
]
