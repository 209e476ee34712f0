"""What an uploaded file may be called and contain — the checks every surface that accepts
files (the HTTP API, the MCP server) applies before a byte reaches a loader.

The client's file name never becomes part of a path: uploads are stored under generated names in
``HANLIN_HOME/uploads/<kb>/`` and the name is kept only for display, after
:func:`display_name` has reduced it to its last component and neutralised control and
bidirectional-formatting characters (a name like ``invoice\u202eexe.pdf`` would otherwise
display as ``invoicefdp.exe``). The content must match the type the name promises.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path, PurePosixPath

from hanlin.config import Settings
from hanlin.errors import Reason
from hanlin.knowledge.display import clean_text
from hanlin.knowledge.loaders import supported_extensions

#: what binary formats start with, to name what a rejected file really is
MAGIC: list[tuple[bytes, str]] = [
    (b"MZ", "a Windows executable"),
    (b"\x7fELF", "a Linux executable"),
    (b"\xcf\xfa\xed\xfe", "a macOS executable"),
    (b"\xfe\xed\xfa\xcf", "a macOS executable"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"%PDF-", "a PDF"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"\xd0\xcf\x11\xe0", "an old Office (OLE) file"),
]
#: binary formats a loader reads, and what their content must start with
EXPECTED = {".pdf": (b"%PDF-", "a PDF"), ".docx": (b"PK\x03\x04", "a ZIP archive (.docx)")}


def display_name(raw: bytes | str) -> tuple[str, str | None]:
    """(the name to show, a reason to reject the file or None).

    Only the last path component is kept (``../../x.md`` → ``x.md``, ``C:\\a\\b.txt`` → ``b.txt``).
    """
    if isinstance(raw, bytes):
        data = raw
        try:
            raw = data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode("latin-1"), Reason(
                "the file name is not valid UTF-8", "bad_file_name"
            )
    if any(unicodedata.category(ch) == "Cc" for ch in raw):
        shown = "".join(ch if unicodedata.category(ch) != "Cc" else "?" for ch in raw)
        return shown, Reason(
            "the file name contains control characters (such as NUL)", "bad_file_name"
        )
    name = clean_text(re.split(r"[/\\]", raw)[-1]).strip()
    if name in ("", ".", ".."):
        return raw, Reason("the upload has no file name", "bad_file_name")
    if len(name.encode("utf-8")) > 255:
        return name[:80] + "…", Reason("the file name is longer than 255 bytes", "bad_file_name")
    return name, None


def type_problem(name: str) -> str | None:
    """Why a file of this name cannot be ingested (its extension), or None."""
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in supported_extensions():
        return None
    what = f"'{suffix}'" if suffix else "without an extension"
    supported = " ".join(sorted(supported_extensions()))
    return Reason(
        f"unsupported file type {what}; supported: {supported}",
        "unsupported_file_type",
        {"ext": suffix, "supported": supported},
    )


def content_problem(head: bytes, suffix: str) -> str | None:
    """Whether the first bytes fit the type the extension names; the reason if not."""
    found = next((what for magic, what in MAGIC if head.startswith(magic)), None)
    expected = EXPECTED.get(suffix)
    if expected is not None:
        magic, what = expected
        if head.startswith(magic) or (suffix == ".pdf" and magic in head[:1024]):
            return None
        actual = found or "not " + what
        return Reason(
            f"the content is {actual}, not what the name '{suffix}' promises",
            "content_mismatch",
            {"ext": suffix, "found": actual},
        )
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None  # UTF-16 text has NUL bytes
    if b"\x00" in head:
        return Reason(
            f"the content is {found or 'binary data'}, not a {suffix} text file",
            "content_mismatch",
            {"ext": suffix, "found": found or "binary data"},
        )
    return None


def upload_dir(settings: Settings, kb: str) -> Path:
    """Where uploads to ``kb`` are kept: ``HANLIN_HOME/uploads/<kb>/``."""
    return settings.home / "uploads" / kb


#: an upload kept in the shared database: ``upload://<kb>/<upload id>/<quoted file name>``
UPLOAD_SCHEME = "upload://"


def upload_uri(kb: str, upload_id: str, filename: str) -> str:
    from urllib.parse import quote

    return f"{UPLOAD_SCHEME}{kb}/{upload_id}/{quote(filename, safe='')}"


def store_upload(settings: Settings, kb: str, upload_id: str, filename: str, data: bytes) -> str:
    """Keep an upload's bytes in the shared database (``database_url``), where a worker on
    any machine reads them; returns its ``upload://`` URI, the source the knowledge base
    records."""
    import time

    from hanlin.db.postgres import database

    assert settings.database_url
    with database(settings.database_url).connection() as conn:
        conn.execute(
            "INSERT INTO hanlin_uploads (kb, upload_id, filename, data, created_at) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (kb, upload_id, filename, data, time.time()),
        )
    return upload_uri(kb, upload_id, filename)


def stored_upload_id(key: str, uploads: Path) -> str | None:
    """The upload id (``up_…``) of a source that is a kept upload: its file in ``uploads``
    (:func:`upload_dir`) or its ``upload://`` URI; None for any other source."""
    if key.startswith(UPLOAD_SCHEME):
        parts = key[len(UPLOAD_SCHEME) :].split("/")
        return parts[1] if len(parts) == 3 else None
    path = Path(key)
    return path.stem if path.parent == uploads else None


def drop_upload(settings: Settings, kb: str, key: str) -> None:
    """Delete a kept upload (its job was cancelled before reaching it, or its failure was
    forgotten): the file under :func:`upload_dir`, or the bytes of an ``upload://`` source of
    ``kb`` in the database."""
    if not key.startswith(UPLOAD_SCHEME):
        Path(key).unlink(missing_ok=True)
        return
    parts = key[len(UPLOAD_SCHEME) :].split("/")
    if len(parts) != 3 or parts[0] != kb or not settings.database_url:
        return
    from hanlin.db.postgres import database

    with database(settings.database_url).connection() as conn:
        conn.execute("DELETE FROM hanlin_uploads WHERE kb = %s AND upload_id = %s", (kb, parts[1]))


def read_upload(settings: Settings, kb: str, uri: str) -> bytes:
    """The bytes of an ``upload://`` source of knowledge base ``kb`` (never another's)."""
    from hanlin.db.postgres import database
    from hanlin.errors import NotFoundError

    parts = uri[len(UPLOAD_SCHEME) :].split("/")
    if len(parts) != 3 or parts[0] != kb or not settings.database_url:
        raise NotFoundError(f"no upload {uri} in knowledge base '{kb}'", hint="upload it again")
    with database(settings.database_url).connection() as conn:
        row = conn.execute(
            "SELECT data FROM hanlin_uploads WHERE kb = %s AND upload_id = %s", (kb, parts[1])
        ).fetchone()
    if row is None:
        raise NotFoundError(f"the upload {uri} is gone", hint="upload the file again")
    return bytes(row[0])
