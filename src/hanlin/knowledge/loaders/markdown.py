"""Markdown: headings, fenced code, pipe tables, lists and paragraphs, via markdown-it-py.

:func:`markdown_blocks` is shared with the HTML loader, which extracts pages to Markdown.
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING

from hanlin.knowledge.base import BlockKind, LoadedDocument
from hanlin.knowledge.loaders.builder import DocBuilder, make_document
from hanlin.knowledge.loaders.encoding import decode_text
from hanlin.knowledge.loaders.registry import LoadRequest, register_loader

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_FRONT_TITLE = re.compile(r"^title[ \t]*:[ \t]*(.+?)[ \t]*$", re.MULTILINE)
_HTML_COMMENT = re.compile(r"\A\s*<!--.*?-->\s*\Z", re.DOTALL)
# Block types whose source lines are kept as they are (markup included).
_RAW_KINDS: dict[str, BlockKind] = {
    "table_open": "table",
    "bullet_list_open": "list",
    "ordered_list_open": "list",
    "paragraph_open": "paragraph",
    "blockquote_open": "paragraph",
}


_parsers = threading.local()  # building a MarkdownIt costs about as much as parsing a page


def _parser() -> MarkdownIt:
    md: MarkdownIt | None = getattr(_parsers, "md", None)
    if md is None:
        from markdown_it import MarkdownIt  # on first use: most commands parse no Markdown

        md = _parsers.md = MarkdownIt("commonmark", {"html": True}).enable("table")
    return md


def markdown_blocks(text: str, builder: DocBuilder) -> str | None:
    """Parse Markdown ``text`` into ``builder``; return the first level-1 heading, if any."""
    lines = text.split("\n")
    tokens = _parser().parse(text)
    first_h1: str | None = None
    for i, token in enumerate(tokens):
        if token.level != 0:
            continue  # nested tokens belong to a list, table or quote already taken whole
        if token.type == "heading_open":
            heading = _inline(tokens, i)
            level = int(token.tag[1:])
            if level == 1 and first_h1 is None and heading:
                first_h1 = heading
            builder.add("heading", heading, level=level)
        elif token.type in ("fence", "code_block"):
            language = token.info.split()[0] if token.info.strip() else None
            builder.add("code", token.content, language=language)
        elif token.type in _RAW_KINDS and token.map:
            start, end = token.map
            builder.add(_RAW_KINDS[token.type], "\n".join(lines[start:end]))
        elif token.type == "html_block" and not _HTML_COMMENT.match(token.content):
            builder.add("paragraph", token.content)
    return first_h1


def _inline(tokens: list[Token], i: int) -> str:
    nxt = tokens[i + 1] if i + 1 < len(tokens) else None
    return nxt.content if nxt is not None and nxt.type == "inline" else ""


def split_front_matter(text: str) -> tuple[str | None, str]:
    """Remove a leading ``---`` YAML block; return its ``title:`` (if any) and the rest."""
    match = _FRONT_MATTER.match(text)
    if match is None:
        return None, text
    title_match = _FRONT_TITLE.search(match.group(1))
    title = title_match.group(1).strip("\"'") if title_match else None
    return title or None, text[match.end() :]


@register_loader([".md", ".markdown"], "markdown", content_types=["text/markdown"])
def load_markdown(request: LoadRequest) -> list[LoadedDocument]:
    """One document. Title: front-matter ``title``, else the first H1, else the file stem."""
    decoded = decode_text(request.data, declared=request.charset)
    front_title, body = split_front_matter(decoded.text)
    builder = DocBuilder()
    first_h1 = markdown_blocks(body, builder)
    title = front_title or first_h1 or request.stem
    doc = make_document(
        request,
        builder,
        format="markdown",
        title=title,
        metadata={"encoding": decoded.encoding},
    )
    return [doc]
