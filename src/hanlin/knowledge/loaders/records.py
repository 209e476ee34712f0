"""Turn records (CSV rows, JSON objects, JSONL lines) into documents using LoaderOptions' fields.

Field names may use dots for nested values (``"meta.author"``, ``"authors.0"``); a key that
itself contains the dot is matched first, so CSV columns named ``a.b`` work too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from hanlin.errors import LoaderError
from hanlin.knowledge.base import JSONValue, LoadedDocument
from hanlin.knowledge.loaders.builder import DocBuilder, make_document
from hanlin.knowledge.loaders.registry import LoadRequest

_MISSING = object()
_MAX_FIELDS_IN_HINT = 20


@dataclass(slots=True)
class SourceRecord:
    """One record and where it sits in its file (``{"row": 3}``, ``{"line": 7}``...)."""

    data: dict[str, Any]
    position: dict[str, int] = field(default_factory=dict)


def get_field(record: dict[str, Any], name: str) -> Any:
    """The value at ``name`` (dotted path allowed), or ``_MISSING``."""
    if name in record:
        return record[name]
    value: Any = record
    for part in name.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Leaf values with dotted paths; lists of strings stay whole (rendered comma-joined)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from flatten(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list) and not all(isinstance(v, str) for v in value):
        for i, item in enumerate(value):
            yield from flatten(item, f"{prefix}.{i}" if prefix else str(i))
    else:
        yield prefix, value


def render_value(value: Any) -> str:
    """A field value as text: strings as they are, lists of strings comma-joined, else JSON."""
    if value is None or value is _MISSING:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    return json.dumps(value, ensure_ascii=False)


def add_record_text(
    builder: DocBuilder, record: dict[str, Any], text_fields: list[str] | None
) -> None:
    """One text field: its value as paragraphs. Otherwise ``field: value`` lines in one block;
    with no fields given, every string field (every column for CSV) in record order."""
    if text_fields is not None and len(text_fields) == 1:
        builder.add_paragraphs(render_value(get_field(record, text_fields[0])))
        return
    if text_fields is None:
        pairs = [(k, v) for k, v in flatten(record) if isinstance(v, str) or _is_str_list(v)]
    else:
        pairs = [(name, get_field(record, name)) for name in text_fields]
    lines = [f"{name}: {text}" for name, value in pairs if (text := render_value(value).strip())]
    builder.add("paragraph", "\n".join(lines))


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)


def record_documents(
    request: LoadRequest,
    records: Iterable[SourceRecord],
    *,
    format: str,
    metadata: dict[str, JSONValue],
    single: bool = False,
) -> list[LoadedDocument]:
    """One document per record with text; records without text are counted in the first
    document's ``skipped_empty_records``. ``single``: the file is one record, keyed by the source.

    Raises LoaderError for too many records, a missing or duplicate id, or no text at all.
    """
    opts = request.options
    docs: list[LoadedDocument] = []
    seen: dict[str, dict[str, int]] = {}
    empty = 0
    first: SourceRecord | None = None
    for index, record in enumerate(records):
        if index >= opts.max_records_per_file:
            raise LoaderError(
                f"more than {opts.max_records_per_file} records in one file",
                hint="split the file, or raise the loader option max_records_per_file",
            )
        first = first or record
        record_id = _record_id(record, index, opts.id_field)
        if not single and record_id in seen:
            raise LoaderError(
                f"duplicate id {record_id!r} in field {opts.id_field!r} "
                f"(at {_where(seen[record_id])} and {_where(record.position)})",
                hint="choose an id_field whose values are unique, or leave id_field unset to key "
                "records by their index",
            )
        seen[record_id] = record.position
        builder = DocBuilder()
        add_record_text(builder, record.data, opts.text_fields)
        if not builder:
            empty += 1
            continue
        meta: dict[str, JSONValue] = _copied_fields(record.data, opts.metadata_fields)
        meta.update(metadata)
        meta.update(record.position)
        docs.append(
            make_document(
                request,
                builder,
                format=format,
                title=_title(record.data, opts.title_field, request, record_id, single),
                key=request.source if single else f"{request.source}#{record_id}",
                metadata=meta,
            )
        )
    if not docs:
        raise _no_text_error(first, opts.text_fields)
    if empty:
        docs[0].metadata["skipped_empty_records"] = empty
    return docs


def _record_id(record: SourceRecord, index: int, id_field: str | None) -> str:
    if id_field is None:
        return str(index)
    value = get_field(record.data, id_field)
    text = render_value(value).strip()
    if not text:
        raise LoaderError(
            f"record at {_where(record.position)} has no value in id field {id_field!r}",
            hint="set id_field to a field every record has, or leave it unset to key records "
            "by their index",
        )
    return text


def _where(position: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in position.items()) or "the top level"


def _title(
    data: dict[str, Any],
    title_field: str | None,
    request: LoadRequest,
    record_id: str,
    single: bool,
) -> str:
    if title_field is not None:
        title = render_value(get_field(data, title_field)).strip()
        if title:
            return title
    name = request.name or request.source
    return request.stem if single else f"{name}#{record_id}"


def _copied_fields(data: dict[str, Any], names: list[str] | None) -> dict[str, JSONValue]:
    copied: dict[str, JSONValue] = {}
    for name in names or []:
        value = get_field(data, name)
        if value is not _MISSING:
            copied[name] = value
    return copied


def _no_text_error(first: SourceRecord | None, text_fields: list[str] | None) -> LoaderError:
    if first is None:
        return LoaderError("no records found", hint="the file holds no rows or objects; add some")
    available = [name for name, _ in flatten(first.data)][:_MAX_FIELDS_IN_HINT]
    wanted = f"text fields {text_fields}" if text_fields else "string fields"
    return LoaderError(
        f"no record has text in its {wanted}",
        hint="set text_fields to fields that hold text; "
        f"the first record has: {', '.join(available)}",
    )
