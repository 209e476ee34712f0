"""Options that shape how files become documents (record fields, size limits)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MiB = 1024 * 1024


class LoaderOptions(BaseModel):
    """How loaders turn files into documents.

    The field options apply to record formats (CSV, TSV, JSON, JSONL). Field names may use dots to
    reach nested values (``"meta.author"``, ``"authors.0"``); a key that itself contains a dot is
    matched first.
    """

    model_config = ConfigDict(extra="forbid")

    #: fields whose values make a record's text. Unset: every string field (JSON) or every column
    #: (CSV), rendered as ``field: value`` lines. A single field is used as plain text.
    text_fields: list[str] | None = None
    #: fields copied into each record's metadata, under the name given here.
    metadata_fields: list[str] | None = None
    #: field holding the record id used in the key ``source#id``. Unset: the record's 0-based index.
    id_field: str | None = None
    #: field holding the record title. Unset: ``file name#id``.
    title_field: str | None = None
    #: files larger than this are refused before they are read (setting ``knowledge.max_file_mb``).
    max_file_bytes: int = Field(default=256 * MiB, ge=1)
    #: bytes a file may decompress to, over all its PDF streams or ZIP members together
    #: (setting ``knowledge.max_inflated_mb``); a file past it is refused as a likely bomb.
    max_inflated_bytes: int = Field(default=256 * MiB, ge=1)
    #: record files with more records than this are refused.
    max_records_per_file: int = Field(default=1_000_000, ge=1)
    #: the file's name as people know it, when it is stored under another one (a server upload
    #: kept as ``<id>.pdf``): used instead of the path's name for titles and record titles.
    display_name: str | None = None
