"""Word .docx: headings, paragraphs, lists and tables in body order, with a zip-bomb guard.

The archive is checked before python-docx opens it: the declared sizes must stay under the
file's inflate budget (``knowledge.max_inflated_mb``), no member nor the archive as a whole may
compress suspiciously well, and then every member is really inflated with a bounded reader that
counts actual bytes against the budget and verifies each CRC, so a member whose declared size
lies is caught too. (:mod:`zipfile` never inflates a member past its declared size, so python-docx
then does bounded work.)
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from typing import TYPE_CHECKING

from hanlin.errors import LoaderError
from hanlin.knowledge.base import LoadedDocument
from hanlin.knowledge.loaders.builder import DocBuilder, make_document, render_table
from hanlin.knowledge.loaders.inflation import InflateBudget
from hanlin.knowledge.loaders.options import MiB
from hanlin.knowledge.loaders.registry import LoadRequest, register_loader

if TYPE_CHECKING:
    from docx.text.paragraph import Paragraph

MAX_COMPRESSION_RATIO = 200
_RATIO_MIN_BYTES = 1 * MiB  # tiny members can have silly ratios without doing harm
#: a real document has tens of parts, a big one a few thousand (images)
MAX_MEMBERS = 20_000
_READ_STEP = 1 * MiB
_HEADING_STYLE = re.compile(r"^Heading (\d)$")
_BOMB_HINT = (
    "this file is not a normal Word document; if you trust it, open and re-save it in Word "
    "or LibreOffice, otherwise leave it out"
)


@register_loader(
    [".docx"],
    "docx",
    content_types=["application/vnd.openxmlformats-officedocument.wordprocessingml.document"],
)
def load_docx(request: LoadRequest) -> list[LoadedDocument]:
    """One document. Title: the core properties' title, else the first heading, else the stem.

    Raises LoaderError for a non-zip file, a zip bomb or a damaged document.
    """
    # imported here, not at the top: registering the loader must not cost every command ~0.2 s
    import docx
    from docx.table import Table

    check_zip(request.data, request.options.max_inflated_bytes)
    try:
        document = docx.Document(io.BytesIO(request.data))
    except Exception as exc:  # python-docx raises KeyError, PackageNotFoundError, XML errors, ...
        raise LoaderError(
            f"damaged or not a Word document: {type(exc).__name__}: {exc}",
            hint="open and re-save it in Word or LibreOffice as .docx",
        ) from exc
    builder = DocBuilder()
    list_items: list[str] = []
    first_heading: str | None = None
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            _flush_list(builder, list_items)
            builder.add("table", render_table([[c.text for c in r.cells] for r in item.rows]))
            continue
        text = item.text.strip()
        if not text:
            continue
        level = _heading_level(item)  # before the list test: numbered headings have numPr
        if not level and _is_list_item(item):
            list_items.append(text)
            continue
        _flush_list(builder, list_items)
        if level:
            first_heading = first_heading or text
            builder.add("heading", text, level=level)
        else:
            builder.add("paragraph", text)
    _flush_list(builder, list_items)
    title = (document.core_properties.title or "").strip() or first_heading or request.stem
    return [make_document(request, builder, format="docx", title=title)]


def check_zip(data: bytes, max_inflated: int = 256 * MiB) -> None:
    """Raise LoaderError unless ``data`` is a zip that inflates to at most ``max_inflated`` bytes
    in all (declared and actual), without suspicious compression ratios or damaged members."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise LoaderError(
            "not a valid .docx (it is not a zip archive)",
            hint="password-protected and old .doc files are not zips: save it from Word or "
            "LibreOffice as an unprotected .docx",
        ) from exc
    with archive:
        infos = archive.infolist()
        _check_declared(infos, max_inflated)
        budget = InflateBudget(max_inflated, "Word document")
        for info in infos:
            try:
                with archive.open(info) as member:
                    while chunk := member.read(_READ_STEP):
                        budget.take(len(chunk))
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                raise LoaderError(
                    f"damaged or crafted .docx: member {info.filename!r} does not match its "
                    f"declared size or checksum ({exc})",
                    hint=_BOMB_HINT,
                ) from exc
            except (NotImplementedError, RuntimeError) as exc:  # odd compression, encryption
                raise LoaderError(
                    f"not a normal .docx: member {info.filename!r} cannot be read ({exc})",
                    hint="save it from Word or LibreOffice as an unprotected .docx",
                ) from exc


def _check_declared(infos: list[zipfile.ZipInfo], max_inflated: int) -> None:
    if len(infos) > MAX_MEMBERS:
        raise LoaderError(
            f"looks like a zip bomb: it has {len(infos)} parts (limit {MAX_MEMBERS})",
            hint=_BOMB_HINT,
            code="zip_bomb",
        )
    total = sum(info.file_size for info in infos)
    if total > max_inflated:
        raise LoaderError(
            f"looks like a zip bomb: it unpacks to {total // MiB} MB, more than the limit of "
            f"{max_inflated // MiB} MB (knowledge.max_inflated_mb)",
            hint=_BOMB_HINT,
            code="zip_bomb",
        )
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size >= _RATIO_MIN_BYTES and ratio > MAX_COMPRESSION_RATIO:
            raise LoaderError(
                f"looks like a zip bomb: member {info.filename!r} is compressed {ratio:.0f}:1 "
                f"(limit {MAX_COMPRESSION_RATIO}:1)",
                hint=_BOMB_HINT,
                code="zip_bomb",
            )
    # many members each too small for the check above can still add up
    packed = sum(info.compress_size for info in infos)
    ratio = total / max(packed, 1)
    if total >= 16 * _RATIO_MIN_BYTES and ratio > MAX_COMPRESSION_RATIO:
        raise LoaderError(
            f"looks like a zip bomb: its {len(infos)} parts are compressed {ratio:.0f}:1 "
            f"together (limit {MAX_COMPRESSION_RATIO}:1)",
            hint=_BOMB_HINT,
            code="zip_bomb",
        )


def _style_name(paragraph: Paragraph) -> str:
    style = paragraph.style
    return (style.name or "") if style is not None else ""


def _heading_level(paragraph: Paragraph) -> int:
    name = _style_name(paragraph)
    if name == "Title":
        return 1
    match = _HEADING_STYLE.match(name)
    return int(match.group(1)) if match else 0


def _is_list_item(paragraph: Paragraph) -> bool:
    p_pr = paragraph._p.pPr
    return _style_name(paragraph).startswith("List") or (
        p_pr is not None and p_pr.numPr is not None
    )


def _flush_list(builder: DocBuilder, items: list[str]) -> None:
    builder.add("list", "\n".join(f"- {item}" for item in items))
    items.clear()
