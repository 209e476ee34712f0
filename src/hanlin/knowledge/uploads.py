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
            return data.decode("latin-1"), "the file name is not valid UTF-8"
    if any(unicodedata.category(ch) == "Cc" for ch in raw):
        shown = "".join(ch if unicodedata.category(ch) != "Cc" else "?" for ch in raw)
        return shown, "the file name contains control characters (such as NUL)"
    name = clean_text(re.split(r"[/\\]", raw)[-1]).strip()
    if name in ("", ".", ".."):
        return raw, "the upload has no file name"
    if len(name.encode("utf-8")) > 255:
        return name[:80] + "…", "the file name is longer than 255 bytes"
    return name, None


def type_problem(name: str) -> str | None:
    """Why a file of this name cannot be ingested (its extension), or None."""
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in supported_extensions():
        return None
    what = f"'{suffix}'" if suffix else "without an extension"
    return f"unsupported file type {what}; supported: {' '.join(sorted(supported_extensions()))}"


def content_problem(head: bytes, suffix: str) -> str | None:
    """Whether the first bytes fit the type the extension names; the reason if not."""
    found = next((what for magic, what in MAGIC if head.startswith(magic)), None)
    expected = EXPECTED.get(suffix)
    if expected is not None:
        magic, what = expected
        if head.startswith(magic) or (suffix == ".pdf" and magic in head[:1024]):
            return None
        actual = found or "not " + what
        return f"the content is {actual}, not what the name '{suffix}' promises"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None  # UTF-16 text has NUL bytes
    if b"\x00" in head:
        return f"the content is {found or 'binary data'}, not a {suffix} text file"
    return None


def upload_dir(settings: Settings, kb: str) -> Path:
    """Where uploads to ``kb`` are kept: ``HANLIN_HOME/uploads/<kb>/``."""
    return settings.home / "uploads" / kb
