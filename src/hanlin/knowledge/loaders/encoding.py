"""Decode the bytes of text-ish files: BOMs, BOM-less UTF-16, UTF-8, then charset detection.

Detection order: a byte-order mark; a UTF-16 NUL-byte pattern; strict UTF-8; a charset the sender
declared; charset-normalizer (which handles GBK/GB18030, Big5, Shift-JIS, Latin-1, ...),
with a second look when it answers Korean for what may be short GBK text (see ``cjk``).
Anything left with NUL bytes or many control characters is treated as binary.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

import charset_normalizer

from hanlin.errors import LoaderError
from hanlin.knowledge.loaders.cjk import KOREAN_ENCODINGS, gbk_reading_if_better

# UTF-32 marks first: the UTF-32 LE mark starts with the UTF-16 LE one.
# (mark, codec that strips it, name reported in metadata)
_BOMS: tuple[tuple[bytes, str, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32", "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32", "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8-sig", "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16", "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16", "utf-16-be"),
)
# C0 controls other than tab/newline/form feed/carriage return, DEL, C1 controls, U+FFFD.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ufffd]")
_MAX_CONTROL_RATIO = 0.02
_SAMPLE_CHARS = 200_000
_UTF16_SAMPLE_BYTES = 4096


@dataclass(frozen=True, slots=True)
class DecodedText:
    """Decoded text with newlines normalized to ``\\n``, and the encoding that decoded it."""

    text: str
    encoding: str


def undecodable(detail: str) -> LoaderError:
    return LoaderError(
        f"binary or undecodable content ({detail})",
        hint="if it is text, convert it to UTF-8 (iconv -f ENC -t UTF-8 in > out); "
        "if it is binary, leave it out or give it its real extension",
    )


def decode_text(data: bytes, *, declared: str | None = None) -> DecodedText:
    """Decode ``data`` or raise :class:`LoaderError` saying it is binary or undecodable.

    ``declared`` is a charset named by the sender (HTTP header, HTML meta); it is used when the
    bytes are not valid UTF-8 and it decodes them cleanly.
    """
    for bom, codec, name in _BOMS:
        if data.startswith(bom):
            return _finish(_strict(data, codec), name)
    utf16 = _utf16_without_bom(data)
    if utf16 is not None:
        return _finish(_strict(data, utf16), utf16)
    if b"\x00" in data:
        raise undecodable("NUL bytes found")
    try:  # valid UTF-8 beats a declared charset: servers often claim ISO-8859-1 by default
        return _finish(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError:
        pass
    if declared:
        text = _try_declared(data, declared)
        if text is not None:
            return _finish(text, declared.lower())
    best = charset_normalizer.from_bytes(data).best()
    if best is None:
        raise undecodable("not UTF-8 and no known encoding fits")
    text, encoding = str(best), best.encoding
    if encoding in KOREAN_ENCODINGS:  # short GBK text is often mistaken for Korean
        chinese = gbk_reading_if_better(data, text)
        if chinese is not None:
            text, encoding = chinese, "gb18030"
    return _finish(text, encoding)


def _utf16_without_bom(data: bytes) -> str | None:
    """Guess BOM-less UTF-16 from NULs in every other byte (true of mostly-ASCII text)."""
    sample = data[:_UTF16_SAMPLE_BYTES]
    if len(sample) < 4 or len(sample) % 2:
        return None
    even, odd = sample[0::2], sample[1::2]
    even_nul, odd_nul = even.count(0) / len(even), odd.count(0) / len(odd)
    if odd_nul > 0.4 and even_nul < 0.05:
        return "utf-16-le"
    if even_nul > 0.4 and odd_nul < 0.05:
        return "utf-16-be"
    return None


def _strict(data: bytes, codec: str) -> str:
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        raise undecodable(f"invalid {codec} at byte {exc.start}") from exc


def _try_declared(data: bytes, declared: str) -> str | None:
    try:
        return data.decode(declared)
    except (LookupError, UnicodeDecodeError):
        return None


def _finish(text: str, encoding: str) -> DecodedText:
    sample = text[:_SAMPLE_CHARS]
    if sample and len(_CONTROL.findall(sample)) / len(sample) > _MAX_CONTROL_RATIO:
        raise undecodable(f"decodes as {encoding} but is full of control characters")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return DecodedText(text=text, encoding=encoding)
