"""PDF: text and tables per page with pdfplumber; pypdf checks encryption and reads the title.

Text outside tables becomes paragraphs (a paragraph ends where the gap between lines is larger
than usual line spacing), each table becomes a Markdown pipe table, all in reading order from the
top of the page, and every block carries its 1-based page number.
"""

from __future__ import annotations

import io
from typing import Any

import pdfplumber
import pypdf
from pdfplumber.page import Page

from hanlin.errors import LoaderError
from hanlin.knowledge.base import LoadedDocument
from hanlin.knowledge.loaders.builder import DocBuilder, make_document, render_table
from hanlin.knowledge.loaders.registry import LoadRequest, register_loader

Bbox = tuple[float, float, float, float]
# A new paragraph starts when the vertical gap between lines exceeds this share of line height.
_PARAGRAPH_GAP = 0.6
# Titles that generators write when the author gave none (reportlab: "untitled").
_PLACEHOLDER_TITLES = {"", "untitled", "untitled document", "(anonymous)", "anonymous"}
_CORRUPT_HINT = (
    "the file is damaged or not really a PDF; open it in a PDF viewer and re-save or re-export "
    "it, or repair it with `qpdf in.pdf out.pdf`"
)


@register_loader([".pdf"], "pdf", content_types=["application/pdf"])
def load_pdf(request: LoadRequest) -> list[LoadedDocument]:
    """One document; metadata ``pages`` is the page count. Title: PDF metadata, else first line.

    Raises LoaderError for a corrupt or encrypted PDF and for one without a text layer.
    """
    if b"%PDF-" not in request.data[:1024]:
        raise LoaderError("not a PDF file (no %PDF- header)", hint=_CORRUPT_HINT)
    meta_title = _check_and_read_title(request.data)
    builder = DocBuilder()
    try:
        with pdfplumber.open(io.BytesIO(request.data)) as pdf:
            n_pages = len(pdf.pages)
            for number, page in enumerate(pdf.pages, start=1):
                _add_page(page, number, builder)
                page.close()  # drop the page's parsed objects; long PDFs otherwise hold them all
    except LoaderError:
        raise
    except Exception as exc:  # pdfminer raises many unrelated types on damaged files
        raise LoaderError(f"corrupt PDF: {type(exc).__name__}: {exc}", hint=_CORRUPT_HINT) from exc
    if not builder:
        raise LoaderError(
            f"PDF has no text layer ({n_pages} page(s) of images, probably scanned)",
            hint="it needs OCR first, e.g. `ocrmypdf in.pdf out.pdf`, then load the OCR'd file",
        )
    first_line = builder.blocks[0].text.split("\n", 1)[0][:200]
    doc = make_document(
        request,
        builder,
        format="pdf",
        title=meta_title or first_line,
        metadata={"pages": n_pages},
    )
    return [doc]


def _check_and_read_title(data: bytes) -> str | None:
    """Raise for encrypted (non-empty password) or unreadable PDFs; return the metadata title."""
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        encrypted = reader.is_encrypted
    except Exception as exc:  # pypdf raises PdfReadError, ValueError, KeyError, ... on bad input
        raise LoaderError(f"corrupt PDF: {exc}", hint=_CORRUPT_HINT) from exc
    if encrypted and not _opens_with_empty_password(reader):
        raise LoaderError(
            "PDF is encrypted",
            hint="decrypt it first, e.g. `qpdf --decrypt in.pdf out.pdf` "
            "(add --password=... if it has one)",
        )
    try:
        title = reader.metadata.title if reader.metadata else None
    except Exception:  # a damaged info dictionary only costs us the title
        return None
    if not isinstance(title, str) or title.strip().lower() in _PLACEHOLDER_TITLES:
        return None
    return title.strip()


def _opens_with_empty_password(reader: pypdf.PdfReader) -> bool:
    try:
        return bool(reader.decrypt(""))
    except Exception:  # e.g. AES without the `cryptography` package: treat as locked
        return False


def _add_page(page: Page, number: int, builder: DocBuilder) -> None:
    tables = [t for t in page.find_tables() if t.bbox]
    boxes = [t.bbox for t in tables]
    text_page = page.filter(lambda obj: not _inside_any(obj, boxes))
    lines = text_page.extract_text_lines(return_chars=False)
    items: list[tuple[float, int, Any]] = [(line["top"], 0, line) for line in lines]
    items += [(table.bbox[1], 1, table) for table in tables]
    items.sort(key=lambda item: (item[0], item[1]))
    paragraph: list[str] = []
    previous: dict[str, Any] | None = None
    for _, is_table, item in items:
        if is_table:
            builder.add("paragraph", "\n".join(paragraph), page=number)
            paragraph, previous = [], None
            builder.add("table", render_table(item.extract()), page=number)
            continue
        if previous is not None and _starts_paragraph(previous, item):
            builder.add("paragraph", "\n".join(paragraph), page=number)
            paragraph = []
        paragraph.append(item["text"])
        previous = item
    builder.add("paragraph", "\n".join(paragraph), page=number)


def _starts_paragraph(previous: dict[str, Any], line: dict[str, Any]) -> bool:
    height = max(previous["bottom"] - previous["top"], 1.0)
    return bool(line["top"] - previous["bottom"] > _PARAGRAPH_GAP * height)


def _inside_any(obj: dict[str, Any], boxes: list[Bbox]) -> bool:
    if obj.get("object_type") != "char":
        return False
    x = (obj["x0"] + obj["x1"]) / 2
    y = (obj["top"] + obj["bottom"]) / 2
    return any(x0 <= x <= x1 and top <= y <= bottom for x0, top, x1, bottom in boxes)
