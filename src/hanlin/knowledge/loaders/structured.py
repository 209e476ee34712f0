"""Record files: CSV/TSV (one document per row), JSON (a list of objects or one object) and
JSONL/NDJSON (one object per line; bad lines are skipped and listed)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from hanlin.errors import LoaderError
from hanlin.knowledge.base import LoadedDocument
from hanlin.knowledge.loaders.encoding import decode_text
from hanlin.knowledge.loaders.records import SourceRecord, record_documents
from hanlin.knowledge.loaders.registry import LoadRequest, register_loader

_SNIFF_CHARS = 64 * 1024
_MAX_LISTED_LINES = 1000
_TSV_TYPES = {"text/tab-separated-values"}


@register_loader([".csv", ".tsv"], "csv", content_types=["text/csv", *_TSV_TYPES])
def load_csv(request: LoadRequest) -> list[LoadedDocument]:
    """One document per data row; the first row names the columns. Metadata ``row`` is the
    1-based data row (the header row not counted). The delimiter is sniffed (.tsv: tab)."""
    decoded = decode_text(request.data, declared=request.charset)
    tsv = request.name.lower().endswith(".tsv") or request.content_type in _TSV_TYPES
    dialect = _dialect(decoded.text, tsv=tsv)
    reader = csv.reader(io.StringIO(decoded.text, newline=""), dialect)
    return record_documents(
        request, _csv_rows(reader), format="csv", metadata={"encoding": decoded.encoding}
    )


def _dialect(text: str, *, tsv: bool) -> type[csv.Dialect] | csv.Dialect:
    if tsv:
        return csv.excel_tab
    try:
        return csv.Sniffer().sniff(text[:_SNIFF_CHARS], delimiters=",;\t|")
    except csv.Error:  # one column, or too irregular to sniff: plain commas
        return csv.excel


def _csv_rows(reader: Any) -> Iterator[SourceRecord]:
    try:
        header = _column_names(next(reader, []))
        for number, row in enumerate(reader, start=1):
            if not any(cell.strip() for cell in row):
                continue
            names = header + [f"column_{i + 1}" for i in range(len(header), len(row))]
            yield SourceRecord(dict(zip(names, row, strict=False)), {"row": number})
    except csv.Error as exc:
        raise LoaderError(
            f"CSV parse error at line {reader.line_num}: {exc}",
            hint='check the quoting around that line (an unclosed " swallows the rest); '
            "re-export the file from the spreadsheet as CSV UTF-8",
        ) from exc


def _column_names(header: list[str]) -> list[str]:
    """Blank header cells become ``column_N``; repeated names get ``_2``, ``_3``..."""
    names: list[str] = []
    for i, raw in enumerate(header):
        name = raw.strip() or f"column_{i + 1}"
        base, n = name, 2
        while name in names:
            name, n = f"{base}_{n}", n + 1
        names.append(name)
    return names


@register_loader([".json"], "json", content_types=["application/json"])
def load_json(request: LoadRequest) -> list[LoadedDocument]:
    """A list of objects: one document per object (metadata ``record``, 0-based). A single
    object: one document keyed by the source."""
    decoded = decode_text(request.data, declared=request.charset)
    meta: dict[str, Any] = {"encoding": decoded.encoding}
    try:
        value = json.loads(decoded.text)
    except json.JSONDecodeError as exc:
        hint = "check the syntax near that spot, e.g. with `python -m json.tool FILE`"
        if exc.msg == "Extra data":
            hint = "it looks like one JSON value per line: rename the file to .jsonl"
        raise LoaderError(
            f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", hint=hint
        ) from exc
    if isinstance(value, dict):
        return record_documents(
            request, [SourceRecord(value)], format="json", metadata=meta, single=True
        )
    if isinstance(value, list):
        return record_documents(request, _json_items(value), format="json", metadata=meta)
    raise LoaderError(
        f"JSON top level is a {type(value).__name__}, not an object or a list of objects",
        hint='wrap the data in objects, e.g. [{"text": ...}, ...]',
    )


def _json_items(items: list[Any]) -> Iterator[SourceRecord]:
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise LoaderError(
                f"JSON list item {index} is a {type(item).__name__}, not an object",
                hint='make every item an object, e.g. {"text": ...}',
            )
        yield SourceRecord(item, {"record": index})


@register_loader([".jsonl", ".ndjson"], "jsonl", content_types=["application/x-ndjson"])
def load_jsonl(request: LoadRequest) -> list[LoadedDocument]:
    """One document per line holding a JSON object (metadata ``line``, 1-based).

    Lines that are not JSON objects are skipped: their numbers go into the first document's
    metadata as ``skipped_lines`` (at most 1000 listed; ``skipped_lines_count`` has the total).
    If no line is a valid object, raises LoaderError naming the first bad line.
    """
    decoded = decode_text(request.data, declared=request.charset)
    good: list[SourceRecord] = []
    bad: list[int] = []
    first_error = ""
    for number, line in enumerate(decoded.text.split("\n"), start=1):
        if not line.strip():
            continue
        value, error = _parse_line(line)
        if error:
            bad.append(number)
            first_error = first_error or f"line {number}: {error}"
            continue
        good.append(SourceRecord(value, {"line": number}))
    if not good and not bad:
        raise LoaderError("no records found", hint="add JSON objects, one per line")
    if not good:
        raise LoaderError(
            f"no line is a valid JSON object ({len(bad)} bad line(s); first: {first_error})",
            hint="each line must hold one JSON object; if the file is one JSON document, "
            "rename it to .json",
        )
    docs = record_documents(request, good, format="jsonl", metadata={"encoding": decoded.encoding})
    if bad:
        docs[0].metadata["skipped_lines"] = bad[:_MAX_LISTED_LINES]
        docs[0].metadata["skipped_lines_count"] = len(bad)
    return docs


def _parse_line(line: str) -> tuple[dict[str, Any], str]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        return {}, exc.msg
    if not isinstance(value, dict):
        return {}, f"a {type(value).__name__}, not an object"
    return value, ""
