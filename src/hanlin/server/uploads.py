"""Receiving uploaded files safely.

The multipart body is parsed as it arrives and each file is written straight to
``HANLIN_HOME/uploads/<kb>/<upload id><extension>``: the client's file name never becomes part
of a path (it is kept only as the display name), so ``../../etc/passwd``, absolute paths and
odd characters cannot place a file anywhere else. Limits are checked while reading: a request
over ``server.max_request_mb`` (declared or actual), a file over ``server.max_upload_mb`` or
more than ``server.max_upload_files`` files is answered 413 and everything this request wrote
is deleted. The content must match the type the name promises (a PDF starts with ``%PDF-``, a
.docx is a zip, text has no NUL bytes): an executable renamed ``.pdf`` is rejected with the
reason, and the rest of the upload goes on.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from hanlin.errors import Reason
from hanlin.knowledge.uploads import content_problem, display_name, type_problem
from hanlin.server.errors import ApiError

MiB = 1 << 20
_SNIFF_BYTES = 8192
_FILENAME_STAR = re.compile(r"filename\*\s*=\s*([^;]+)", re.IGNORECASE)


@dataclass(slots=True)
class Received:
    """One file of an upload: stored at ``path``, or rejected with ``reason``."""

    upload_id: str
    filename: str
    size: int = 0
    path: Path | None = None
    reason: str | None = None


class _Receiver:
    """python-multipart callbacks writing each file part to its own generated name."""

    def __init__(
        self,
        dest: Path,
        field: str,
        max_file: int,
        max_files: int,
        accept: Callable[[str], str | None] = type_problem,
    ) -> None:
        self.dest = dest
        self.field = field
        self.accept = accept
        self.max_file = max_file
        self.max_files = max_files
        self.files: list[Received] = []
        self.written: list[Path] = []
        self.error: ApiError | None = None
        self._headers: dict[str, bytes] = {}
        self._field = b""
        self._value = b""
        self._current: Received | None = None
        self._fh: IO[bytes] | None = None
        self._head = b""
        self._suffix = ""

    # header callbacks
    def on_part_begin(self) -> None:
        self._headers, self._current, self._fh, self._head = {}, None, None, b""

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._field.decode("latin-1").lower()] = self._value
        self._field, self._value = b"", b""

    def on_headers_finished(self) -> None:
        disposition = self._headers.get("content-disposition", b"")
        _, params = parse_options_header(disposition)
        if params.get(b"name", b"").decode("latin-1") != self.field:
            return  # another form field: ignored
        raw_name: bytes | str | None = params.get(b"filename")
        star = _FILENAME_STAR.search(disposition.decode("latin-1"))
        if star:  # RFC 5987: filename*=UTF-8''%E4%B8%AD.pdf
            charset, _, rest = star.group(1).strip().strip('"').partition("''")
            raw_name = urllib.parse.unquote(rest, encoding=charset or "utf-8", errors="replace")
        if raw_name is None:
            return  # a plain value, not a file
        if len(self.files) >= self.max_files:
            self.error = ApiError(
                413,
                f"the upload has more than {self.max_files} files; nothing was stored",
                hint="raise server.max_upload_files in hanlin.toml, or upload in several requests",
                code="too_many_files",
                params={"limit": self.max_files},
            )
            raise self.error
        name, reason = display_name(raw_name)
        item = Received("up_" + secrets.token_hex(8), name, reason=reason or self.accept(name))
        self.files.append(item)
        self._current = item
        if item.reason is None:
            self._suffix = PurePosixPath(name).suffix.lower()
            item.path = self.dest / f"{item.upload_id}{self._suffix}"
            self.dest.mkdir(parents=True, exist_ok=True)
            part = item.path.with_suffix(".part")
            self.written.append(part)
            self._fh = open(part, "xb")  # noqa: SIM115 - closed in on_part_end / cleanup

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        item = self._current
        if item is None:
            return
        item.size += end - start
        if item.size > self.max_file:
            self.error = ApiError(
                413,
                f"'{item.filename}' is larger than the upload limit of "
                f"{self.max_file / MiB:.3g} MB; nothing was stored",
                hint="raise server.max_upload_mb in hanlin.toml, or split the file",
                code="file_too_large",
                params={"file": item.filename, "limit_mb": round(self.max_file / MiB, 3)},
            )
            raise self.error
        if self._fh is not None:
            if len(self._head) < _SNIFF_BYTES:
                self._head += data[start : min(end, start + _SNIFF_BYTES)]
            self._fh.write(data[start:end])

    def on_part_end(self) -> None:
        item, fh = self._current, self._fh
        self._current, self._fh = None, None
        if item is None or fh is None or item.path is None:
            return
        fh.close()
        part = item.path.with_suffix(".part")
        problem: str | None = Reason("the file is empty", "empty_file") if item.size == 0 else None
        problem = problem or content_problem(self._head, self._suffix)
        if problem:
            item.reason, item.path = problem, None
            part.unlink(missing_ok=True)
            return
        os.replace(part, item.path)
        self.written.append(item.path)

    def cleanup(self) -> None:
        if self._fh is not None:
            self._fh.close()
        for path in self.written:
            with contextlib.suppress(OSError):
                path.unlink()


async def receive(
    request: Request,
    dest: Path,
    *,
    max_file: int,
    max_request: int,
    max_files: int = 100,
    field: str = "files",
    accept: Callable[[str], str | None] = type_problem,
) -> list[Received]:
    """Stream a ``multipart/form-data`` upload to ``dest``; see the module docstring.
    ``accept(name)`` says why a file of that name is not taken (default: no loader reads it).

    Raises ApiError: 415 (not multipart), 413 (over a limit), 400 (malformed body, or no file).
    """
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise ApiError(
            415,
            "upload files as multipart/form-data",
            hint=f"send each file in a form field named '{field}' (curl -F {field}=@file.pdf)",
            code="unsupported_media_type",
        )
    too_big = ApiError(
        413,
        f"the upload is larger than the request limit of {max_request / MiB:.3g} MB; "
        "nothing was stored",
        hint="raise server.max_request_mb in hanlin.toml, or upload in several requests",
        code="request_too_large",
        params={"limit_mb": round(max_request / MiB, 3)},
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_request:
        raise too_big
    receiver = _Receiver(dest, field, max_file, max_files, accept)
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": receiver.on_part_begin,
            "on_part_data": receiver.on_part_data,
            "on_part_end": receiver.on_part_end,
            "on_header_field": receiver.on_header_field,
            "on_header_value": receiver.on_header_value,
            "on_header_end": receiver.on_header_end,
            "on_headers_finished": receiver.on_headers_finished,
        },
    )
    total = 0
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > max_request:
                raise too_big
            parser.write(chunk)
        parser.finalize()
    except ApiError:
        receiver.cleanup()
        raise
    except ClientDisconnect:
        receiver.cleanup()
        raise ApiError(400, "the client disconnected during the upload") from None
    except Exception as exc:  # python-multipart raises its own parse errors
        receiver.cleanup()
        if receiver.error is not None:
            raise receiver.error from None
        raise ApiError(
            400,
            f"malformed multipart body ({type(exc).__name__})",
            hint="send a standard multipart/form-data request",
            code="bad_multipart",
        ) from None
    if receiver._current is not None:  # the body ended inside a part
        receiver.cleanup()
        raise ApiError(400, "the multipart body ended inside a file", code="bad_multipart")
    if not receiver.files:
        raise ApiError(
            400,
            f"no file in the upload (form field '{field}')",
            hint=f"send files in a field named '{field}': curl -F {field}=@doc.pdf",
            code="no_files",
        )
    return receiver.files
