"""Build a document's text from blocks so that block offsets always match the text.

Every loader collects blocks in document order with :class:`DocBuilder`; the text is the blocks
joined by a blank line, and each block's ``start``/``end`` index into it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from hanlin.errors import LoaderError
from hanlin.knowledge.base import Block, BlockKind, JSONValue, LoadedDocument
from hanlin.knowledge.loaders.registry import LoadRequest

SEPARATOR = "\n\n"
_BLANK_LINE = re.compile(r"\n[ \t\f\v]*\n")
_LEADING_BLANK_LINES = re.compile(r"\A(?:[ \t\f\v]*\n)+")


class DocBuilder:
    """Collects blocks and computes their offsets in the joined text."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        self.blocks: list[Block] = []

    def add(
        self,
        kind: BlockKind,
        text: str,
        *,
        level: int = 0,
        page: int | None = None,
        language: str | None = None,
    ) -> None:
        """Append a block; blank text is ignored. Code keeps its indentation."""
        text = _LEADING_BLANK_LINES.sub("", text).rstrip() if kind == "code" else text.strip()
        if not text:
            return
        if self._parts:
            self._parts.append(SEPARATOR)
            self._length += len(SEPARATOR)
        start = self._length
        self._parts.append(text)
        self._length += len(text)
        self.blocks.append(
            Block(
                kind=kind,
                text=text,
                start=start,
                end=self._length,
                level=level,
                page=page,
                language=language,
            )
        )

    def add_paragraphs(self, text: str, *, page: int | None = None) -> None:
        """Split on blank lines and add each piece as a paragraph."""
        for para in split_paragraphs(text):
            self.add("paragraph", para, page=page)

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def __bool__(self) -> bool:
        return bool(self.blocks)


def split_paragraphs(text: str) -> list[str]:
    """Pieces of ``text`` separated by blank (or whitespace-only) lines, stripped."""
    return [p.strip() for p in _BLANK_LINE.split(text) if p.strip()]


def render_table(rows: Sequence[Sequence[str | None]]) -> str:
    """Render rows as a Markdown pipe table; the first row is the header.

    Newlines in cells become spaces and pipes are escaped, so each row stays on one line.
    Empty rows are dropped; returns "" when nothing is left.
    """
    cleaned = [[_cell(c) for c in row] for row in rows]
    cleaned = [row for row in cleaned if any(row)]
    if not cleaned:
        return ""
    width = max(len(row) for row in cleaned)
    padded = [row + [""] * (width - len(row)) for row in cleaned]
    lines = ["| " + " | ".join(padded[0]) + " |", "|" + "---|" * width]
    lines += ["| " + " | ".join(row) + " |" for row in padded[1:]]
    return "\n".join(lines)


def _cell(value: str | None) -> str:
    if value is None:
        return ""
    return " ".join(value.split()).replace("|", "\\|")


def make_document(
    request: LoadRequest,
    builder: DocBuilder,
    *,
    format: str,
    title: str,
    key: str | None = None,
    metadata: dict[str, JSONValue] | None = None,
) -> LoadedDocument:
    """Assemble a document; metadata always carries ``format`` and ``source``.

    Raises LoaderError when the builder holds no text at all.
    """
    if not builder:
        raise LoaderError(
            f"no text found in this {format} file",
            hint="the file has no readable content; add text to it or leave it out",
        )
    meta: dict[str, JSONValue] = dict(metadata or {})
    meta["format"] = format
    meta["source"] = request.source
    return LoadedDocument(
        key=key if key is not None else request.source,
        source=request.source,
        title=title.strip() or request.stem,
        text=builder.text,
        blocks=builder.blocks,
        format=format,
        metadata=meta,
    )
