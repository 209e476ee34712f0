"""The loader registry: maps file extensions and content types to loader functions.

Built-in loaders register through :func:`register_loader` exactly as a plugin would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import PurePath

from hanlin.knowledge.base import LoadedDocument
from hanlin.knowledge.loaders.options import LoaderOptions


@dataclass(frozen=True, slots=True)
class LoadRequest:
    """Everything a loader gets: the raw bytes and where they came from."""

    data: bytes
    source: str  # the path or URL, as given; single-document keys use it
    name: str  # the file name; its extension picked the loader
    options: LoaderOptions
    content_type: str | None = None  # the MIME type without parameters, lower case
    charset: str | None = None  # the charset parameter of the content type, if any

    @property
    def stem(self) -> str:
        """The file name without its extension, or the source when there is no name."""
        return PurePath(self.name).stem or self.source


LoaderFn = Callable[[LoadRequest], list[LoadedDocument]]


@dataclass(frozen=True, slots=True)
class LoaderSpec:
    """A registered loader."""

    format: str
    fn: LoaderFn
    extensions: frozenset[str]
    content_types: frozenset[str]


class LoaderRegistry:
    """Extension and content-type lookup. A later registration of an extension replaces the
    earlier one, so a plugin can override a built-in loader."""

    def __init__(self) -> None:
        self._by_extension: dict[str, LoaderSpec] = {}
        self._by_content_type: dict[str, LoaderSpec] = {}

    def add(self, spec: LoaderSpec) -> None:
        for ext in spec.extensions:
            self._by_extension[ext] = spec
        for ctype in spec.content_types:
            self._by_content_type[ctype] = spec

    def for_extension(self, extension: str) -> LoaderSpec | None:
        return self._by_extension.get(extension.lower())

    def for_content_type(self, content_type: str) -> LoaderSpec | None:
        return self._by_content_type.get(content_type.lower())

    def extensions(self) -> set[str]:
        return set(self._by_extension)


REGISTRY = LoaderRegistry()


def normalize_extension(ext: str) -> str:
    """``"PDF"`` and ``".pdf"`` both become ``".pdf"``."""
    ext = ext.strip().lower()
    return ext if ext.startswith(".") else f".{ext}"


def register_loader(
    extensions: Iterable[str], format: str, *, content_types: Iterable[str] = ()
) -> Callable[[LoaderFn], LoaderFn]:
    """Register ``fn(request) -> list[LoadedDocument]`` for file extensions and MIME types.

    ``format`` is the name stored in ``LoadedDocument.format`` and metadata. Raise
    :class:`hanlin.errors.LoaderError` (with a hint) for input the loader cannot use.
    """

    def decorator(fn: LoaderFn) -> LoaderFn:
        REGISTRY.add(
            LoaderSpec(
                format=format,
                fn=fn,
                extensions=frozenset(normalize_extension(e) for e in extensions),
                content_types=frozenset(c.strip().lower() for c in content_types),
            )
        )
        return fn

    return decorator


def supported_extensions() -> set[str]:
    """Every extension a registered loader handles, lower case with the dot (``".pdf"``)."""
    return REGISTRY.extensions()


def is_supported(path: str | PurePath) -> bool:
    """Whether a registered loader handles this file's extension."""
    return REGISTRY.for_extension(PurePath(path).suffix) is not None
