"""Types shared by loaders, chunking, stores and search."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

BlockKind = Literal["heading", "paragraph", "table", "code", "list"]
JSONValue = Any  # str | int | float | bool | None | list | dict


@dataclass(slots=True)
class Block:
    """A structural unit of a document, as a loader found it.

    ``start``/``end`` are character offsets into :attr:`LoadedDocument.text`, so that
    ``doc.text[block.start:block.end] == block.text`` always holds.
    """

    kind: BlockKind
    text: str
    start: int
    end: int
    level: int = 0  # heading level (1 = top); 0 for other kinds
    page: int | None = None  # 1-based page number where the format has pages
    language: str | None = None  # code blocks: the language, when known


@dataclass(slots=True)
class LoadedDocument:
    """One document produced by a loader: a file, or one record of a CSV/JSON(L) file."""

    key: str  # unique within a knowledge base: the path, or "path#record-id"
    source: str  # the file path or URL it came from
    title: str
    text: str  # the normalized full text; block offsets refer to it
    blocks: list[Block]
    format: str  # "txt", "markdown", "html", "pdf", "docx", "csv", "json", "jsonl", "code"
    metadata: dict[str, JSONValue] = field(default_factory=dict)


@dataclass(slots=True)
class Chunk:
    """A piece of a document sized for embedding and citation."""

    text: str
    ord: int  # position within its document, from 0
    char_start: int  # offsets into the document's text
    char_end: int
    n_tokens: int
    heading_path: list[str] = field(default_factory=list)
    page: int | None = None  # first page the chunk touches
    page_end: int | None = None  # last page the chunk touches
    kind: BlockKind = "paragraph"  # the dominant block kind


@dataclass(slots=True)
class SkippedFile:
    """A file that could not be ingested: where, why and what to do."""

    path: str
    reason: str
    hint: str
