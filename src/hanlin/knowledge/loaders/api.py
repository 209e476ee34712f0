"""Entry points: load a file or a byte string into documents, picking the loader by type."""

from __future__ import annotations

import stat
from pathlib import Path, PurePath

from hanlin.errors import LoaderError
from hanlin.knowledge.base import LoadedDocument
from hanlin.knowledge.loaders.options import LoaderOptions, MiB
from hanlin.knowledge.loaders.registry import (
    REGISTRY,
    LoaderSpec,
    LoadRequest,
    supported_extensions,
)

# Content types that say nothing about the format: the file extension decides instead.
_GENERIC_CONTENT_TYPES = frozenset(
    {"text/plain", "application/octet-stream", "binary/octet-stream"}
)
_SIZE_HINT = (
    "raise the limit with the setting `knowledge.max_file_mb` "
    "(hanlin.toml, or HANLIN_KNOWLEDGE__MAX_FILE_MB), or split the file"
)


def load_bytes(
    data: bytes,
    *,
    source: str,
    name: str,
    options: LoaderOptions,
    content_type: str | None = None,
) -> list[LoadedDocument]:
    """Parse ``data`` into documents.

    The loader is picked by ``content_type`` when it names a specific format (``text/html``,
    ``application/pdf``; useful for URLs), otherwise by the extension of ``name``.
    Raises :class:`LoaderError` (with a hint) for unsupported, oversized, empty, binary, corrupt or
    encrypted input.
    """
    if not data:
        raise LoaderError("file is empty", hint="add content to it or leave it out")
    _check_size(len(data), options)
    mime, charset = _parse_content_type(content_type)
    spec = _pick_loader(name, mime)
    request = LoadRequest(
        data=data, source=source, name=name, options=options, content_type=mime, charset=charset
    )
    return spec.fn(request)


def loader_for(name: str, content_type: str | None = None) -> LoaderSpec:
    """The loader :func:`load_bytes` would use; raises :class:`LoaderError` when none fits."""
    return _pick_loader(name, _parse_content_type(content_type)[0])


def load_file(path: Path, options: LoaderOptions) -> list[LoadedDocument]:
    """Read ``path`` and parse it with :func:`load_bytes`; ``source`` is the path as given.

    The size is checked with ``stat`` before anything is read. Raises :class:`LoaderError` for a
    missing, unreadable, special, empty or oversized file, and whatever ``load_bytes`` raises.
    """
    try:
        st = path.stat()
    except FileNotFoundError as exc:
        raise LoaderError(f"file not found: {path}", hint="check the path") from exc
    except PermissionError as exc:
        raise LoaderError(
            f"permission denied: {path}",
            hint="check permissions (chmod) of the file and its folders",
        ) from exc
    except OSError as exc:
        raise LoaderError(f"cannot access {path}: {exc.strerror}", hint="check the path") from exc
    if stat.S_ISDIR(st.st_mode):
        raise LoaderError(
            f"{path} is a directory, not a file",
            hint="pass the files inside it, or the folder to a command that walks folders",
        )
    if not stat.S_ISREG(st.st_mode):
        raise LoaderError(
            f"{path} is not a regular file (a pipe, socket or device)",
            hint="copy its content into a regular file first",
        )
    if st.st_size == 0:
        raise LoaderError(f"file is empty: {path}", hint="add content to it or leave it out")
    _check_size(st.st_size, options)
    try:
        data = path.read_bytes()
    except PermissionError as exc:
        raise LoaderError(
            f"permission denied: cannot read {path}",
            hint=f"check permissions (chmod), e.g. `chmod u+r {path}`",
        ) from exc
    except OSError as exc:
        raise LoaderError(
            f"cannot read {path}: {exc.strerror or exc}",
            hint="check that the disk or network share is available and the file is intact",
        ) from exc
    return load_bytes(data, source=str(path), name=path.name, options=options)


def _check_size(size: int, options: LoaderOptions) -> None:
    if size > options.max_file_bytes:
        raise LoaderError(
            f"file is {_size(size)}, over the limit of {_size(options.max_file_bytes)}",
            hint=_SIZE_HINT,
        )


def _size(n: int) -> str:
    return f"{n} bytes" if n < MiB else f"{round(n / MiB, 1):g} MB"


def _parse_content_type(content_type: str | None) -> tuple[str | None, str | None]:
    """``"text/html; charset=GBK"`` → ``("text/html", "gbk")``."""
    if not content_type:
        return None, None
    mime, *params = (p.strip() for p in content_type.split(";"))
    charset = None
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip("\"'").lower()
    return mime.lower() or None, charset


def _pick_loader(name: str, mime: str | None) -> LoaderSpec:
    if mime and mime not in _GENERIC_CONTENT_TYPES:
        spec = REGISTRY.for_content_type(mime)
        if spec is not None:
            return spec
    suffix = PurePath(name).suffix
    spec = REGISTRY.for_extension(suffix) if suffix else None
    if spec is not None:
        return spec
    if mime:
        spec = REGISTRY.for_content_type(mime)
        if spec is not None:
            return spec
    what = f"file type '{suffix}'" if suffix else "a file without extension"
    if mime:
        what += f" (content type {mime})"
    raise LoaderError(
        f"unsupported {what}",
        hint="convert it to a supported format or rename it if the extension is wrong; "
        f"supported: {' '.join(sorted(supported_extensions()))}",
    )
