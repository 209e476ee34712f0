"""Files crafted to blow up parsers, for the tests and the benchmark of the parse budget.

Each is small on disk and expensive to parse: a PDF whose content stream inflates to gigabytes,
.docx archives whose members add up to gigabytes or lie about their size, a PDF that keeps the
content-stream interpreter busy, JSON nested past the parser's recursion limit. Real
documents of each format come with them, to show the good file in a batch still gets through.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from functools import lru_cache

MiB = 1 << 20
_ZEROS = bytes(MiB)


def deflate_zeros(n_bytes: int, *, raw: bool = False) -> bytes:
    """zlib (or raw deflate) of ``n_bytes`` zero bytes (~1 KB per MiB), in a fraction of the
    time compressing them takes: after a full flush every MiB of zeros deflates to the same
    bytes, so one MiB is compressed and its output repeated."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = packer.compress(_ZEROS) + packer.flush(zlib.Z_FULL_FLUSH)
    unit = packer.compress(_ZEROS) + packer.flush(zlib.Z_FULL_FLUSH)
    whole, rest = divmod(n_bytes, MiB)
    body = [first, unit * (whole - 1)] if whole else []
    body += [packer.compress(bytes(rest)), packer.flush()]
    if raw:
        return b"".join(body)
    adler = 1
    for _ in range(whole):
        adler = zlib.adler32(_ZEROS, adler)
    adler = zlib.adler32(bytes(rest), adler)
    return b"\x78\xda" + b"".join(body) + struct.pack(">I", adler)


def pdf_file(content: bytes, *, flate: bool = True) -> bytes:
    """A one-page PDF (correct xref) whose page content stream is ``content``, already
    Flate-compressed when ``flate``."""
    filters = b" /Filter /FlateDecode" if flate else b""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d%s >>\nstream\n" % (len(content), filters) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def pdf_text(text: str) -> bytes:
    """A real PDF with one line of (ASCII) text."""
    line = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return pdf_file(zlib.compress(f"BT /F1 12 Tf 72 720 Td ({line}) Tj ET".encode("latin-1")))


@lru_cache(maxsize=4)
def pdf_bomb(inflated: int = 2 << 30) -> bytes:
    """A PDF whose content stream inflates to ``inflated`` zero bytes (2 GiB: a ~2 MB file)."""
    return pdf_file(deflate_zeros(inflated))


@lru_cache(maxsize=4)
def pdf_spin(operators: int = 4_000_000) -> bytes:
    """A PDF whose content stream is millions of cheap operators (``q Q``): no memory, but the
    interpreter runs for minutes. Inflates to 4 bytes per operator (16 MB by default)."""
    return pdf_file(zlib.compress(b"q Q " * operators, 9))


def docx_text(text: str) -> bytes:
    """A real Word document with one heading and one paragraph."""
    import docx

    document = docx.Document()
    document.add_heading("Report", level=1)
    document.add_paragraph(text)
    buf = io.BytesIO()
    document.save(buf)
    return buf.getvalue()


@lru_cache(maxsize=4)
def docx_many_members(members: int = 2400, member_bytes: int = 900 * 1024) -> bytes:
    """A real .docx plus ``members`` extra parts, each under the per-member ratio check's size
    floor (1 MiB) yet compressed ~1000:1: 2 GiB in all from a ~2.5 MB file."""
    return _docx_with(
        [(f"word/media/part{i:05d}.bin", member_bytes) for i in range(members)], lie_to=None
    )


@lru_cache(maxsize=4)
def docx_lying_member(real_bytes: int = 1 << 30, declared: int = 1000) -> bytes:
    """A real .docx plus one part whose headers declare ``declared`` bytes while its data
    inflates to ``real_bytes`` (1 GiB: a ~1 MB file)."""
    return _docx_with([("word/media/image1.bin", real_bytes)], lie_to=declared)


def _docx_with(parts: list[tuple[str, int]], *, lie_to: int | None) -> bytes:
    buf = io.BytesIO(docx_text("The parts of this document are mostly zeros."))
    with zipfile.ZipFile(buf, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        cache: dict[int, tuple[bytes, int]] = {}
        for name, size in parts:
            if size not in cache:
                cache[size] = (deflate_zeros(size, raw=True), _crc_of_zeros(size))
            packed, crc = cache[size]
            _write_raw(archive, name, packed, size, crc)
    data = buf.getvalue()
    if lie_to is not None:
        for name, _ in parts:
            data = _declare_size(data, name.encode(), lie_to)
    return data


def _crc_of_zeros(n_bytes: int) -> int:
    crc = 0
    for _ in range(n_bytes // MiB):
        crc = zlib.crc32(_ZEROS, crc)
    return zlib.crc32(bytes(n_bytes % MiB), crc)


def _write_raw(archive: zipfile.ZipFile, name: str, packed: bytes, size: int, crc: int) -> None:
    """Add an already-deflated member (compressing the same zeros thousands of times is slow)."""
    info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.file_size, info.compress_size, info.CRC = size, len(packed), crc
    fp = archive.fp
    assert fp is not None
    info.header_offset = fp.tell()
    fp.write(info.FileHeader(zip64=False))
    fp.write(packed)
    archive.filelist.append(info)
    archive.NameToInfo[name] = info
    archive.start_dir = fp.tell()
    archive._didModify = True  # type: ignore[attr-defined]  # close() writes the directory


def _declare_size(data: bytes, name: bytes, size: int) -> bytes:
    """Rewrite the uncompressed size of member ``name`` in its local and central headers."""
    out = bytearray(data)
    for signature, size_at, name_len_at, name_at in (
        (b"PK\x03\x04", 22, 26, 30),
        (b"PK\x01\x02", 24, 28, 46),
    ):
        at = out.find(signature)
        while at != -1:
            (n,) = struct.unpack_from("<H", out, at + name_len_at)
            if bytes(out[at + name_at : at + name_at + n]) == name:
                struct.pack_into("<I", out, at + size_at, size)
            at = out.find(signature, at + 4)
    return bytes(out)


def json_nesting(depth: int = 200_000) -> bytes:
    """JSON nested far past any parser's recursion limit (400 KB)."""
    return b"[" * depth + b"]" * depth


def markdown_text(text: str) -> bytes:
    return f"# Notes\n\n{text}\n".encode()
