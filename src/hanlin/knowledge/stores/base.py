"""The ``Store`` protocol every knowledge-store backend implements, its record types, and the
registry that picks a backend by name.

A store keeps everything a knowledge base knows — sources, files, documents, chunks with their
vectors and keyword tokens — and answers dense and keyword candidate queries. Backends register
under the ``hanlin.stores`` entry-point group (the built-in ``sqlite`` store too); the setting
``knowledge.store`` picks one for new knowledge bases. The conformance suite in
:mod:`hanlin.testing.store_conformance` is the contract: a new backend passes it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from hanlin.knowledge.base import Chunk
from hanlin.knowledge.display import clean_text
from hanlin.knowledge.filters import Filter
from hanlin.registry import Registry

if TYPE_CHECKING:
    from hanlin.config import Settings
    from hanlin.knowledge.display import SourceNames

Vector = npt.NDArray[np.float32]


@dataclass(slots=True)
class ChunkWrite:
    """A chunk ready to store: its text span, keyword tokens and vector."""

    chunk: Chunk
    tokens: str  # analyzer tokens joined by single spaces
    text_hash: str
    vector: Vector | None


@dataclass(slots=True)
class DocumentWrite:
    """A whole document (with all its chunks) to insert or replace, atomically."""

    key: str
    file_path: str | None
    source: str
    title: str
    format: str
    content_hash: str
    metadata: dict[str, Any]
    n_chars: int
    chunks: list[ChunkWrite]


@dataclass(slots=True)
class FileRecord:
    """What the store remembers of one file, to skip it when unchanged."""

    path: str
    source_id: int
    size: int
    mtime_ns: int
    content_hash: str | None
    status: str  # "ok" | "failed"
    error: str | None = None
    hint: str | None = None

    def to_dict(self, names: SourceNames | None = None) -> dict[str, Any]:
        """A failed file as every surface shows it; ``names`` gives the public names API
        clients see (:mod:`hanlin.knowledge.display`), without it paths are shown as stored."""
        if names is None:
            return {"path": self.path, "reason": self.error, "hint": self.hint}
        return {
            "path": names.source(self.path),
            "reason": names.scrub(self.error),
            "hint": self.hint,
        }


@dataclass(slots=True)
class SourceRecord:
    """A path, glob or URL the user added; ``kb sync`` re-scans these."""

    id: int
    uri: str
    kind: str  # "path" | "glob" | "url"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class DocumentRecord:
    """A stored document, as ``kb docs`` lists it."""

    id: int
    key: str
    source: str
    title: str
    format: str
    content_hash: str
    n_chunks: int
    n_chars: int
    metadata: dict[str, Any]
    updated_at: float

    def to_dict(self, names: SourceNames | None = None) -> dict[str, Any]:
        """A stored document as every surface lists it (``status`` is always ``done``: the
        server's document list shows files still being ingested in the same shape). ``names``
        as in :meth:`FileRecord.to_dict`."""
        key, source = (
            (self.key, self.source)
            if names is None
            else (
                names.key(self.key),
                names.source(self.source),
            )
        )
        return {
            "id": self.id,
            "doc": key,
            "title": clean_text(self.title),
            "source": source,
            "format": self.format,
            "chunks": self.n_chunks,
            "chars": self.n_chars,
            "status": "done",
            "reason": None,
            "updated_at": self.updated_at,
        }


@dataclass(slots=True)
class StoredChunk:
    """A chunk as search returns it, with where it came from (for citations)."""

    id: int
    doc_key: str
    source: str
    title: str
    text: str
    ord: int
    heading_path: list[str]
    page: int | None
    page_end: int | None
    char_start: int
    char_end: int
    kind: str
    metadata: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The chunk as a document's chunk viewer shows it: where it sits in the document,
        without the document's key or source (those can be server paths)."""
        return {
            "ord": self.ord,
            "text": self.text,
            "heading_path": [clean_text(h) for h in self.heading_path],
            "page": self.page,
            "page_end": self.page_end,
            "char_start": self.char_start,
            "char_end": self.char_end,
        }


@dataclass(slots=True)
class StoreStats:
    """Counts and sizes for ``kb show``."""

    documents: int
    chunks: int
    files: int
    failed_files: int
    vectors: int
    size_bytes: int


class Store(Protocol):
    """What a knowledge-store backend must do. All writes are atomic per call."""

    # --- metadata -------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None: ...
    def set_meta(self, key: str, value: str) -> None: ...

    # --- sources and files ----------------------------------------------------------------
    def add_source(self, uri: str, kind: str, options: dict[str, Any]) -> SourceRecord: ...
    def list_sources(self) -> list[SourceRecord]: ...
    def get_file(self, path: str) -> FileRecord | None: ...
    def list_files(self, source_id: int | None = None) -> list[FileRecord]: ...
    def record_file(self, record: FileRecord) -> None: ...
    def delete_file(self, path: str) -> int:
        """Forget a file and delete its documents; returns the number of documents deleted."""
        ...

    def remove_source(self, uri: str) -> int:
        """Forget a source with the files recorded under it and their documents; returns the
        number of documents deleted (0 also when no source has this ``uri``)."""
        ...

    # --- documents ------------------------------------------------------------------------
    def write(
        self,
        documents: Sequence[DocumentWrite],
        files: Sequence[FileRecord] = (),
        delete_keys: Sequence[str] = (),
    ) -> None:
        """Replace ``documents`` (by key), delete ``delete_keys`` and record ``files`` in one
        transaction: after a crash either all of it is visible or none of it."""
        ...

    def document_hashes(self, file_path: str) -> dict[str, str]: ...
    def list_documents(self, limit: int | None = None) -> list[DocumentRecord]: ...
    def get_document(self, key: str) -> DocumentRecord | None: ...
    def document_key(self, doc_id: int) -> str | None:
        """The key of the document with this id (``DocumentRecord.id``), None if none."""
        ...

    def delete_documents(self, keys: Sequence[str]) -> int: ...

    # --- vectors --------------------------------------------------------------------------
    def vectors_for_text_hashes(self, hashes: Sequence[str]) -> dict[str, Vector]: ...
    def vectors_for_ids(self, ids: Sequence[int]) -> dict[int, Vector]: ...
    def chunks_without_vectors(self, limit: int) -> list[tuple[int, str]]: ...
    def set_vectors(self, ids: Sequence[int], vectors: Vector) -> None: ...
    def clear_vectors(self) -> None: ...

    # --- re-embedding: new vectors staged beside the live ones ------------------------------
    def chunks_without_staged_vectors(
        self, space: str, limit: int
    ) -> list[tuple[int, str, str, list[str]]]:
        """Chunks with no vector staged for ``space`` yet, by id, as :meth:`chunk_texts` gives
        them: ``(id, document title, text, heading path)``, what a chunk is embedded from."""
        ...

    def stage_vectors(self, space: str, ids: Sequence[int], vectors: Vector) -> None:
        """Stage vectors of ``space`` for chunks (replacing any staged before). Search keeps
        using the live vectors; staged ones persist, so an interrupted re-embed resumes."""
        ...

    def count_staged_vectors(self, space: str) -> int: ...
    def discard_staged_vectors(self) -> None:
        """Drop every staged vector (of any space); the live ones are untouched."""
        ...

    def swap_staged_vectors(self, space: str, meta: Mapping[str, str]) -> None:
        """In one transaction, make every chunk's staged ``space`` vector its live one, set
        ``meta`` (``embedding_model``, ``embedding_space``, ``embedding_dim``) and empty the
        staging area; then rebuild the derived vector index for the new space.

        Raises :class:`~hanlin.errors.InvalidInputError` when a chunk has no vector staged for
        ``space``; nothing changes then. After a crash either all of it is visible or none."""
        ...

    # --- keyword tokens -------------------------------------------------------------------
    def chunk_texts(self, after_id: int, limit: int) -> list[tuple[int, str, str, list[str]]]: ...
    def set_tokens(self, ids: Sequence[int], tokens: Sequence[str]) -> None: ...

    # --- search ---------------------------------------------------------------------------
    def dense_search(
        self, vector: Vector, k: int, flt: Filter | None = None
    ) -> list[tuple[int, float]]:
        """Top ``k`` chunk ids by cosine similarity (higher is better)."""
        ...

    def keyword_search(
        self, tokens: Sequence[str], k: int, flt: Filter | None = None
    ) -> list[tuple[int, float]]:
        """Top ``k`` chunk ids by BM25 over the stored tokens (higher is better)."""
        ...

    def score_dense(self, vector: Vector, ids: Sequence[int]) -> dict[int, float]:
        """Exact cosine of ``vector`` with each given chunk (every fusion candidate)."""
        ...

    def get_chunks(self, ids: Sequence[int]) -> list[StoredChunk]: ...
    def document_chunks(self, key: str) -> list[StoredChunk]:
        """One document's chunks in reading order (empty when there is no such document)."""
        ...

    def iter_chunk_ids(self) -> Iterator[int]: ...
    def export_documents(self, keys: Sequence[str]) -> list[DocumentWrite]:
        """Documents exactly as they were written (chunks with tokens, text hashes and
        vectors), in the order of ``keys``, skipping unknown keys: what ``kb copy`` moves to
        another store."""
        ...

    # --- housekeeping ---------------------------------------------------------------------
    def stats(self) -> StoreStats: ...
    def flush(self) -> None:
        """Persist derived indexes (ANN, keyword) so the next open needs no catch-up."""
        ...

    def locked(self) -> AbstractContextManager[None]:
        """The store's write lock (re-entrant); every write method takes it."""
        ...

    def close(self) -> None: ...


def export_row(
    doc: Sequence[Any],
    chunks: Sequence[Sequence[Any]],
    to_vector: Callable[[Any], Vector],
    from_json: Callable[[Any], Any],
) -> DocumentWrite:
    """A :class:`DocumentWrite` from :data:`EXPORT_DOC` / :data:`EXPORT_CHUNKS` rows (the stores'
    export queries; ``from_json`` decodes JSON columns, ``to_vector``
    vectors)."""
    return DocumentWrite(
        key=doc[1],
        file_path=doc[2],
        source=doc[3],
        title=doc[4],
        format=doc[5],
        content_hash=doc[6],
        metadata=from_json(doc[7]),
        n_chars=doc[8],
        chunks=[
            ChunkWrite(
                chunk=Chunk(
                    text=c[0],
                    ord=c[1],
                    char_start=c[2],
                    char_end=c[3],
                    n_tokens=c[4],
                    heading_path=from_json(c[5]),
                    page=c[6],
                    page_end=c[7],
                    kind=c[8],
                ),
                tokens=c[9],
                text_hash=c[10],
                vector=None if c[11] is None else to_vector(c[11]),
            )
            for c in chunks
        ],
    )


class StoreFactory(Protocol):
    """How a knowledge base opens its store: the registered class is called as
    ``factory(directory, analyzer_version=..., settings=...)``.

    - ``directory`` — the knowledge base's folder, ``HANLIN_HOME/kb/<name>/``; it exists. An
      embedded store keeps its files there; a server store may keep only its own marker files
      and use the folder name as the knowledge base's key.
    - ``analyzer_version`` — the version of the keyword analyzer whose tokens the store holds;
      a store that keeps a derived keyword index rebuilds it when this changes.
    - ``settings`` — the application settings (``database_url``, ``knowledge.*``), so a store
      reads its own options from them.

    Opening creates or migrates the schema (idempotent) and raises a
    :class:`~hanlin.errors.HanlinError` with a hint when it cannot. The knowledge base records
    ``embedding_dim`` and ``embedding_space`` with :meth:`Store.set_meta` before it writes any
    vector; a store sizes its vector index from them.
    """

    def __call__(self, directory: Path, *, analyzer_version: str, settings: Settings) -> Store: ...


#: Stores by name. Third parties register under the ``hanlin.stores`` entry-point group, e.g.
#: ``postgres = "hanlin_pg.store:PostgresStore"``; :meth:`Registry.register` works in code.
STORES: Registry[StoreFactory] = Registry(
    "knowledge store",
    "hanlin.stores",
    hint="set knowledge.store in hanlin.toml, or install the package that provides the store",
)
