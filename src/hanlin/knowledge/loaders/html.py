"""HTML pages: main-content extraction with trafilatura (to Markdown, keeping headings and
tables), falling back to the plain body text when trafilatura finds nothing."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from hanlin.errors import LoaderError
from hanlin.knowledge.base import LoadedDocument
from hanlin.knowledge.loaders.builder import DocBuilder, make_document
from hanlin.knowledge.loaders.encoding import decode_text
from hanlin.knowledge.loaders.markdown import markdown_blocks
from hanlin.knowledge.loaders.registry import LoadRequest, register_loader

if TYPE_CHECKING:
    import lxml.html

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_XML_DECLARATION = re.compile(r"\A\s*<\?xml[^>]*\?>")
_BOILERPLATE = (
    "script", "style", "noscript", "template", "nav", "header", "footer", "aside", "iframe", "svg",
)  # fmt: skip
_BLOCK_TAGS = (
    "p", "div", "section", "article", "main", "li", "tr", "pre", "blockquote", "br", "table",
    "ul", "ol", "dl", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6",
)  # fmt: skip


@register_loader(
    [".html", ".htm", ".xhtml"], "html", content_types=["text/html", "application/xhtml+xml"]
)
def load_html(request: LoadRequest) -> list[LoadedDocument]:
    """One document. Title: ``og:title``, else ``<title>``, else the first H1, else the name."""
    # imported here, not at the top: registering the loader must not cost every command ~0.3 s
    import lxml.html
    import trafilatura

    declared = request.charset or _meta_charset(request.data)
    decoded = decode_text(request.data, declared=declared)
    tree = _parse(_XML_DECLARATION.sub("", decoded.text))
    title = _page_title(tree)
    body = _strip_boilerplate(tree)
    builder = DocBuilder()
    extracted = trafilatura.extract(
        lxml.html.tostring(tree, encoding="unicode"),
        output_format="markdown",
        include_tables=True,
        include_formatting=True,
        include_comments=False,
        include_links=False,
        include_images=False,
        favor_recall=True,
    )
    method = "trafilatura"
    first_h1 = markdown_blocks(extracted, builder) if extracted else None
    if not builder:
        method = "body-text"
        builder.add_paragraphs(_body_text(body))
    if not builder:
        raise LoaderError(
            "no text found in this HTML page",
            hint="the page may build its content with JavaScript; save the rendered page "
            "(e.g. the browser's 'Save as') and load that file",
        )
    title = title or first_h1 or request.stem
    doc = make_document(
        request,
        builder,
        format="html",
        title=title,
        metadata={"encoding": decoded.encoding, "extraction": method},
    )
    return [doc]


def _meta_charset(data: bytes) -> str | None:
    match = _META_CHARSET.search(data[:4096])
    return match.group(1).decode("ascii").lower() if match else None


def _parse(html: str) -> lxml.html.HtmlElement:
    import lxml.html
    from lxml import etree

    try:
        return lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError) as exc:
        raise LoaderError(
            f"cannot parse HTML: {exc}", hint="check that the file really is an HTML page"
        ) from exc


def _page_title(tree: lxml.html.HtmlElement) -> str | None:
    for content in tree.xpath("//meta[@property='og:title']/@content"):
        if str(content).strip():
            return str(content).strip()
    for title in tree.xpath("//title"):
        text = " ".join(title.text_content().split())
        if text:
            return text
    return None


def _strip_boilerplate(tree: lxml.html.HtmlElement) -> lxml.html.HtmlElement | None:
    """Drop scripts, styles, navigation and page chrome in place; return the body, if any.

    ``<form>`` stays: ASP.NET-style pages wrap their whole content in one.
    A ``<header>`` inside ``<article>``/``<main>`` often holds the article's title, so it stays.
    """
    for element in list(tree.iter(*_BOILERPLATE)):
        if element.tag == "header" and any(
            a.tag in ("article", "main") for a in element.iterancestors()
        ):
            continue
        if element.getparent() is not None:
            element.drop_tree()
    bodies = tree.xpath("//body")
    return bodies[0] if bodies else None


def _body_text(body: lxml.html.HtmlElement | None) -> str:
    """The visible body text, one paragraph per block element."""
    if body is None:
        return ""
    for element in body.iter(*_BLOCK_TAGS):
        element.text = "\n\n" + (element.text or "")
        element.tail = "\n\n" + (element.tail or "")
    raw = body.text_content()
    paragraphs = (" ".join(p.split()) for p in re.split(r"\n\s*\n", raw))
    return "\n\n".join(p for p in paragraphs if p)
