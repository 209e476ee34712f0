"""PDF: text and tables per page with pdfplumber; pypdf checks encryption and reads the title.

Text outside tables becomes paragraphs (a paragraph ends where the gap between lines is larger
than usual line spacing), each table becomes a Markdown pipe table, all in reading order from the
top of the page, and every block carries its 1-based page number.

pdfminer inflates streams without bound; its decoders are routed through the file's
:class:`~hanlin.knowledge.loaders.inflation.InflateBudget`, so a small PDF whose streams inflate
to gigabytes fails fast with a clear reason instead of taking the memory.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hanlin.errors import LoaderError
from hanlin.knowledge.base import LoadedDocument
from hanlin.knowledge.loaders.builder import DocBuilder, make_document, render_table
from hanlin.knowledge.loaders.inflation import InflateBudget, current_budget, inflate_budget
from hanlin.knowledge.loaders.registry import LoadRequest, register_loader

if TYPE_CHECKING:  # pdfplumber, pypdf and pdfminer load on first use (0.3 s): most runs never
    import pypdf
    from pdfplumber.page import Page

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
    import pdfplumber

    _bound_pdfminer()
    meta_title = _check_and_read_title(request.data)
    builder = DocBuilder()
    with inflate_budget(request.options.max_inflated_bytes, "PDF") as budget:
        try:
            with pdfplumber.open(io.BytesIO(request.data)) as pdf:
                n_pages = len(pdf.pages)
                for number, page in enumerate(pdf.pages, start=1):
                    _add_page(page, number, builder)
                    page.close()  # drop the page's parsed objects; long PDFs hold them all
        except LoaderError:
            raise
        except Exception as exc:  # pdfminer raises many unrelated types on damaged files
            if budget.used > budget.limit:  # pdfminer swallowed the limit and failed later
                raise budget.exceeded() from exc
            raise LoaderError(
                f"corrupt PDF: {type(exc).__name__}: {exc}", hint=_CORRUPT_HINT
            ) from exc
        if budget.used > budget.limit:  # the limit was hit where pdfminer ignores errors
            raise budget.exceeded()
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
    import pypdf

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


# --- bounded stream decoding ---------------------------------------------------------------------
# pdfminer's PDFStream.decode calls module-level decoders; these replacements count every inflated
# byte against the current file's budget (and behave as the originals when no budget is active).


class _BudgetedZlib:
    """Stands in for the ``zlib`` module inside :mod:`pdfminer.pdftypes`."""

    error = zlib.error

    @staticmethod
    def decompress(data: bytes) -> bytes:
        budget = current_budget()
        return zlib.decompress(data) if budget is None else budget.inflate_zlib(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(zlib, name)


def _decompress_corrupted(data: bytes) -> bytes:
    """A damaged Flate stream: keep what inflates before the damage (bounded, linear time)."""
    return (current_budget() or InflateBudget(1 << 62)).inflate_zlib(data, lenient=True)


def _lzwdecode(data: bytes) -> bytes:
    from pdfminer import lzw

    budget = current_budget() or InflateBudget(1 << 62)
    parts = []
    for part in lzw.LZWDecoder(io.BytesIO(data)).run():
        budget.take(len(part))
        parts.append(part)
    return b"".join(parts)


def _rldecode(data: bytes) -> bytes:
    """RunLengthDecode (PDF 1.7, 7.4.5): a length byte, then literal bytes or one repeated byte."""
    budget = current_budget() or InflateBudget(1 << 62)
    out = bytearray()
    i, n = 0, len(data)
    while i < n and data[i] != 128:
        length = data[i]
        if length < 128:
            piece = data[i + 1 : i + 2 + length]
            i += length + 2
        else:
            piece = data[i + 1 : i + 2] * (257 - length)
            i += 2
        budget.take(len(piece))
        out += piece
    return bytes(out)


def _counted(decode: Callable[..., bytes]) -> Callable[..., bytes]:
    """A decoder whose output is small relative to its input, counted after the fact."""

    def counted(*args: Any) -> bytes:
        out = decode(*args)
        budget = current_budget()
        if budget is not None:
            budget.take(len(out))
        return out

    return counted


def _bound_pdfminer() -> None:
    from pdfminer import pdftypes

    if getattr(pdftypes, "_hanlin_bounded", False):
        return
    pdftypes.zlib = _BudgetedZlib()  # type: ignore[assignment]
    pdftypes.decompress_corrupted = _decompress_corrupted
    pdftypes.lzwdecode = _lzwdecode
    pdftypes.rldecode = _rldecode
    pdftypes.ascii85decode = _counted(pdftypes.ascii85decode)
    pdftypes.asciihexdecode = _counted(pdftypes.asciihexdecode)
    pdftypes.ccittfaxdecode = _counted(pdftypes.ccittfaxdecode)
    pdftypes._hanlin_bounded = True  # type: ignore[attr-defined]
