"""The ingest pipeline: file → loader → chunks → tokens + vectors → one atomic store write.

Files are grouped so the embedding model sees full batches; each group is written in one
transaction together with its file records, so a crash (even ``kill -9``) leaves whole files or
nothing, and the next ``kb sync`` redoes exactly what is missing. Unchanged files are skipped by
size + mtime, then by content hash; unchanged documents inside a changed file (CSV rows, JSON
records) are skipped by their own hash, and unchanged chunk texts reuse their stored vectors.
"""

from __future__ import annotations

import os
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import xxhash

from hanlin.errors import DatabaseUnavailableError, HanlinError, LoaderError, Reason
from hanlin.guard.detect import Detector
from hanlin.knowledge.base import LoadedDocument, SkippedFile
from hanlin.knowledge.chunking import chunk_document
from hanlin.knowledge.loaders import LoaderOptions
from hanlin.knowledge.masking import mask_document
from hanlin.knowledge.parsing import ParseLimits, ParsePool
from hanlin.knowledge.stores.base import ChunkWrite, DocumentWrite, FileRecord, Store
from hanlin.knowledge.tokenize import Analyzer
from hanlin.models.embeddings.base import EmbeddingModel
from hanlin.models.embeddings.pool import EmbeddingPool, EmbedJob
from hanlin.net.ssrf import FetchedURL, FetchError

_LETTER_RE = re.compile(r"[^\W\d_]")  # any letter, Latin or CJK

#: chunks gathered before one embed + write round (spread over the embedding workers)
GROUP_CHUNKS = 512
#: a group is also written after this many seconds, so progress is never held back long
GROUP_SECONDS = 5.0
#: groups queued for embedding before loading waits for the oldest (bounds memory)
MAX_GROUPS_IN_FLIGHT = 4


@dataclass
class IngestReport:
    """What an ``add`` or ``sync`` did. ``ok`` is false when anything was skipped."""

    files_seen: int = 0
    files_unchanged: int = 0
    documents_added: int = 0
    documents_updated: int = 0
    documents_unchanged: int = 0
    documents_deleted: int = 0
    chunks_written: int = 0
    chunks_embedded: int = 0
    bytes_read: int = 0
    ignored: int = 0
    seconds: float = 0.0
    skipped: list[SkippedFile] = field(default_factory=list)
    #: files (or URLs) not ingested because the caller stopped the ingest (``stop``)
    cancelled: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.skipped


ProgressCallback = Callable[[int, int, str], None]  # (done, total, current item)

FileStatus = Literal["parsing", "embedding", "done", "failed"]


@dataclass(frozen=True, slots=True)
class FileEvent:
    """A file (or URL) moved to another stage of the pipeline.

    ``parsing``: being read, parsed and chunked; ``embedding``: chunked, waiting for vectors and
    the store write; ``done``: stored (``chunks`` written, 0 when unchanged); ``failed``:
    skipped, ``reason`` says why (the other files go on).
    """

    path: str
    status: FileStatus
    reason: str | None = None
    chunks: int = 0


FileStatusCallback = Callable[[FileEvent], None]
#: ``choose(texts)`` → the embedding model for a knowledge base whose model is chosen from its
#: first documents (``knowledge.embedding_model = "auto"``)
EmbedderChoice = Callable[[list[str]], EmbeddingModel]
#: ``fetch(url, max_bytes)`` → the body; raises FetchError / BlockedURLError (SSRF guard)
UrlFetcher = Callable[[str, int], FetchedURL]


def _reason(exc: HanlinError) -> Reason:
    """Why a file failed, with a stable code: a loader's own, else ``parse_failed``."""
    if exc.code is None and isinstance(exc, LoaderError):
        return Reason(exc.message, "parse_failed", {"detail": exc.message})
    return Reason.of(exc)


def content_hash(data: bytes | str) -> str:
    return xxhash.xxh3_128_hexdigest(data.encode("utf-8") if isinstance(data, str) else data)


def _doc_hash(doc: LoadedDocument) -> str:
    import json

    meta = json.dumps(doc.metadata, sort_keys=True, ensure_ascii=False, default=str)
    return content_hash(f"{doc.title}\x00{doc.text}\x00{meta}")


def context_text(title: str, heading_path: list[str], text: str) -> str:
    """The text a chunk is embedded and keyword-indexed as: title and section path first, so a
    chunk deep in a document still matches what the document is about. A title without a
    single letter (a file named ``6364-2.txt``, ``20240101.md``) says nothing about the text
    and is left out."""
    useful = bool(title) and _LETTER_RE.search(title) is not None
    head = [title] if useful and not text.startswith(title) else []
    head += [h for h in heading_path if h and h != title and not text.startswith(h)]
    return "\n".join([*head, text]) if head else text


@dataclass
class _Pending:
    record: FileRecord
    docs: list[DocumentWrite]
    delete_keys: list[str]
    texts: list[str]  # context texts of chunks needing vectors, aligned with `slots`
    slots: list[ChunkWrite]


@dataclass
class _Group:
    """Files queued for embedding together and written in one transaction."""

    files: list[_Pending]
    n_slots: int
    todo: list[ChunkWrite]  # chunks whose vectors `job` computes, in order
    aliases: list[tuple[ChunkWrite, ChunkWrite]]  # (chunk, chunk with the same text in `todo`)
    job: EmbedJob


class Ingestor:
    """Runs the pipeline for one knowledge base."""

    def __init__(
        self,
        store: Store,
        embedder: EmbeddingModel,
        analyzer: Analyzer,
        *,
        chunk_tokens: int,
        chunk_overlap: int,
        max_file_bytes: int,
        embed_workers: int | None = None,
        on_file: FileStatusCallback | None = None,
        parse_limits: ParseLimits | None = None,
        parser: ParsePool | None = None,
        choose_embedder: EmbedderChoice | None = None,
        mask: Detector | None = None,
    ) -> None:
        """``parser`` parses the files (isolated workers under ``parse_limits``); one passed in
        stays open after :meth:`close`, so its workers serve the next ingest too.
        ``choose_embedder`` is asked once, with the first chunk texts and before any is
        embedded, for the model to use instead of ``embedder``. ``mask``: personal data it
        finds is masked in every document before chunking (:mod:`hanlin.knowledge.masking`)."""
        self.store = store
        self.on_file = on_file
        self.embedder = embedder
        self.analyzer = analyzer
        self.chunk_tokens = chunk_tokens
        self.chunk_overlap = chunk_overlap
        self.max_file_bytes = max_file_bytes
        self._pending: list[_Pending] = []
        self._pending_chunks = 0
        self._last_write = time.monotonic()
        self.pool = EmbeddingPool(embedder, embed_workers)
        self._own_parser = parser is None
        self.parser = parser if parser is not None else ParsePool(parse_limits)
        self._inflight: deque[_Group] = deque()
        #: text hash → the chunk whose vector is being computed (queued, not yet stored)
        self._embedding: dict[str, ChunkWrite] = {}
        self._choose = choose_embedder
        self.mask = mask

    # --- entry points ----------------------------------------------------------------------
    def ingest_files(
        self,
        files: list[tuple[Path, int, LoaderOptions]],
        report: IngestReport,
        progress: ProgressCallback | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> None:
        """``stop`` is asked before each file; once it says yes, the files left are recorded
        in ``report.cancelled`` and what was read so far is written as usual."""
        total = len(files)
        for done, (path, source_id, options) in enumerate(files, 1):
            if stop is not None and stop():
                report.cancelled.extend(str(f[0]) for f in files[done - 1 :])
                break
            report.files_seen += 1
            self._emit(str(path), "parsing")
            try:
                self._one_file(path, source_id, options, report)
            except DatabaseUnavailableError:
                raise  # not the file's fault: the whole job is retried once the database is back
            except HanlinError as exc:
                self._fail(str(path), source_id, _reason(exc), exc.hint or "", report)
            except OSError as exc:
                self._fail(
                    str(path),
                    source_id,
                    Reason(
                        f"cannot read: {exc.strerror or exc}",
                        "file_unreadable",
                        {"detail": str(exc.strerror or exc)},
                    ),
                    "check that the file exists and is readable (permissions)",
                    report,
                )
            if self._pending_chunks >= GROUP_CHUNKS or (
                self._pending
                and self._choose is None  # the model is chosen from more than one file
                and time.monotonic() - self._last_write > GROUP_SECONDS
            ):
                self._write_pending(report, wait=False)
            elif self._inflight and self._inflight[0].job.done():
                self._write_pending_done(report)
            if self._pending_chunks >= self.pool.min_parallel // 2:
                self._choose_embedder()
                self.pool.start()  # real work ahead: workers load the model while we parse
            if progress:
                progress(done, total, str(path))
        self._write_pending(report)

    def ingest_url(
        self,
        url: str,
        source_id: int,
        options: LoaderOptions,
        report: IngestReport,
        fetch: UrlFetcher,
    ) -> None:
        report.files_seen += 1
        self._emit(url, "parsing")
        try:
            resp = fetch(url, self.max_file_bytes)
            data = resp.content
            name = resp.url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or "index.html"
            self._ingest_bytes(
                url,
                source_id,
                data,
                0,
                0,
                options,
                report,
                name=name,
                content_type=resp.content_type,
            )
        except FetchError as exc:
            self._fail(
                url,
                source_id,
                Reason(f"download failed: {exc.message}", "download_failed", {"url": url}),
                f"{exc.hint}; then run `hanlin kb sync`" if exc.hint else "run `hanlin kb sync`",
                report,
            )
        except DatabaseUnavailableError:
            raise  # not the page's fault: the whole job is retried once the database is back
        except HanlinError as exc:
            self._fail(url, source_id, _reason(exc), exc.hint or "", report)
        self._write_pending(report)

    # --- one file --------------------------------------------------------------------------
    def _one_file(
        self, path: Path, source_id: int, options: LoaderOptions, report: IngestReport
    ) -> None:
        key = str(path)
        st = path.stat()
        old = self.store.get_file(key)
        if old and old.status == "ok" and old.size == st.st_size and old.mtime_ns == st.st_mtime_ns:
            report.files_unchanged += 1
            self._emit(key, "done")
            return
        # The first file to read starts a parse worker, which imports the loaders while this
        # one is read and hashed; a sync with nothing changed starts none (it took 0.7 s to start
        # and stop one).
        self.parser.start()
        if st.st_size > self.max_file_bytes:
            raise LoaderError(
                f"file is {st.st_size >> 20} MB, over the {self.max_file_bytes >> 20} MB limit",
                hint="raise knowledge.max_file_mb in hanlin.toml, or split the file",
            )
        data = path.read_bytes()
        self._ingest_bytes(
            key,
            source_id,
            data,
            st.st_size,
            st.st_mtime_ns,
            options,
            report,
            name=options.display_name or path.name,
            content_type=None,
        )

    def _ingest_bytes(
        self,
        key: str,
        source_id: int,
        data: bytes,
        size: int,
        mtime_ns: int,
        options: LoaderOptions,
        report: IngestReport,
        *,
        name: str,
        content_type: str | None,
    ) -> None:
        report.bytes_read += len(data)
        digest = content_hash(data)
        old = self.store.get_file(key)
        record = FileRecord(key, source_id, size or len(data), mtime_ns, digest, "ok")
        if old and old.status == "ok" and old.content_hash == digest:
            self.store.record_file(record)  # touched, not changed
            report.files_unchanged += 1
            self._emit(key, "done")
            return
        docs = self.parser.parse(
            data, source=key, name=name, options=options, content_type=content_type
        )
        if self.mask is not None:
            docs = [mask_document(self.mask, d) for d in docs]
        old_hashes = self.store.document_hashes(key)
        pending = _Pending(
            record, [], [k for k in old_hashes if k not in {d.key for d in docs}], [], []
        )
        for doc in docs:
            digest = _doc_hash(doc)
            if old_hashes.get(doc.key) == digest:
                report.documents_unchanged += 1
                continue
            if doc.key in old_hashes:
                report.documents_updated += 1
            else:
                report.documents_added += 1
            pending.docs.append(self._prepare(doc, key, digest, pending))
        report.documents_deleted += len(pending.delete_keys)
        self._pending.append(pending)
        self._pending_chunks += len(pending.slots)
        self._emit(key, "embedding", chunks=len(pending.slots))

    def _prepare(
        self, doc: LoadedDocument, file_key: str, digest: str, pending: _Pending
    ) -> DocumentWrite:
        chunks = chunk_document(doc, max_tokens=self.chunk_tokens, overlap=self.chunk_overlap)
        writes = []
        for chunk in chunks:
            ctx = context_text(doc.title, chunk.heading_path, chunk.text)
            w = ChunkWrite(
                chunk,
                " ".join(self.analyzer.analyze(ctx)),
                content_hash(self.embedder.name + "\x00" + ctx),
                None,
            )
            writes.append(w)
            pending.texts.append(ctx)
            pending.slots.append(w)
        return DocumentWrite(
            key=doc.key,
            file_path=file_key,
            source=doc.source,
            title=doc.title,
            format=doc.format,
            content_hash=digest,
            metadata=doc.metadata,
            n_chars=len(doc.text),
            chunks=writes,
        )

    def _fail(
        self, path: str, source_id: int, reason: str, hint: str, report: IngestReport
    ) -> None:
        report.skipped.append(SkippedFile(path, reason, hint))
        self._emit(path, "failed", reason)
        try:
            st = os.stat(path)
            size, mtime = st.st_size, st.st_mtime_ns
        except OSError:
            size, mtime = 0, 0
        old = self.store.get_file(path)
        # keep the last good version's documents; remember the failure
        self.store.record_file(
            FileRecord(
                path,
                source_id,
                size,
                mtime,
                old.content_hash if old else None,
                "failed",
                reason,
                hint,
            )
        )

    # --- embedding and writing --------------------------------------------------------------
    def _write_pending(self, report: IngestReport, *, wait: bool = True) -> None:
        """Queue the pending group for embedding, then write every group whose vectors are done.

        Groups are written in the order they were queued, each in one transaction. While the
        workers embed, the calling thread goes on loading and segmenting the next files; it
        blocks only when more than :data:`MAX_GROUPS_IN_FLIGHT` groups wait (bounded memory),
        or at the end (``wait``). Writes stay on the calling thread (one SQLite connection).
        """
        if self._pending:
            self._choose_embedder()
            group, self._pending = self._pending, []
            self._pending_chunks = 0
            self._last_write = time.monotonic()
            self._inflight.append(self._submit(group))
        while self._inflight and (wait or len(self._inflight) > MAX_GROUPS_IN_FLIGHT):
            self._write_group(self._inflight.popleft(), report)
        self._write_pending_done(report)

    def _write_pending_done(self, report: IngestReport) -> None:
        """Write the queued groups whose vectors are ready, oldest first, without waiting."""
        while self._inflight and self._inflight[0].job.done():
            self._write_group(self._inflight.popleft(), report)

    def _choose_embedder(self) -> None:
        """Let ``choose_embedder`` pick the model from the pending texts (once, before the
        embedding workers start); chunks already prepared get the new model's text hashes."""
        texts = [t for p in self._pending for t in p.texts]
        if self._choose is None or not texts:
            return
        choose, self._choose = self._choose, None
        model = choose(texts)
        if model.name == self.embedder.name:
            return
        self.pool.close()  # not started: nothing was embedded with the old model
        self.embedder = model
        self.pool = EmbeddingPool(model, self.pool.workers)
        for p in self._pending:
            for slot, ctx in zip(p.slots, p.texts, strict=True):
                slot.text_hash = content_hash(model.name + "\x00" + ctx)

    def _submit(self, group: list[_Pending]) -> _Group:
        slots = [s for p in group for s in p.slots]
        texts = [t for p in group for t in p.texts]
        reuse = self.store.vectors_for_text_hashes([s.text_hash for s in slots])
        todo: list[ChunkWrite] = []
        todo_texts: list[str] = []
        aliases: list[tuple[ChunkWrite, ChunkWrite]] = []
        for s, t in zip(slots, texts, strict=True):
            s.vector = reuse.get(s.text_hash)
            if s.vector is not None:
                continue
            first = self._embedding.get(s.text_hash)
            if first is not None:  # the same text is already being embedded: embed it once
                aliases.append((s, first))
                continue
            self._embedding[s.text_hash] = s
            todo.append(s)
            todo_texts.append(t)
        return _Group(group, len(slots), todo, aliases, self.pool.submit(todo_texts))

    def _write_group(self, g: _Group, report: IngestReport) -> None:
        vecs = g.job.result()
        for s, v in zip(g.todo, vecs, strict=True):
            s.vector = v
        for s, first in g.aliases:  # `first` is in this group or an earlier (written) one
            s.vector = first.vector
        report.chunks_embedded += len(g.todo)
        self.store.write(
            [d for p in g.files for d in p.docs],
            files=[p.record for p in g.files],
            delete_keys=[k for p in g.files for k in p.delete_keys],
        )
        for s in g.todo:  # stored now: later groups find these vectors in the store
            self._embedding.pop(s.text_hash, None)
        report.chunks_written += g.n_slots
        for p in g.files:
            self._emit(p.record.path, "done", chunks=len(p.slots))

    def _emit(
        self, path: str, status: FileStatus, reason: str | None = None, chunks: int = 0
    ) -> None:
        if self.on_file is not None:
            self.on_file(FileEvent(path, status, reason, chunks))

    def close(self) -> None:
        self.pool.close()
        if self._own_parser:
            self.parser.close()
