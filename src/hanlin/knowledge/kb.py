"""``hanlin.KnowledgeBase``: the typed Python API behind ``hanlin kb …``.

A knowledge base is a folder under ``HANLIN_HOME/kb/<name>/`` holding one store. Writes take a
file lock per batch, so two processes adding to the same knowledge base interleave safely.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hanlin.access import caller as access
from hanlin.config import Settings, load_settings
from hanlin.errors import (
    AlreadyExistsError,
    EmbeddingModelMismatch,
    InvalidInputError,
    NotFoundError,
    did_you_mean,
)
from hanlin.guard.policy import ingest_detector
from hanlin.knowledge.base import SkippedFile
from hanlin.knowledge.catalog import catalog
from hanlin.knowledge.display import SourceNames
from hanlin.knowledge.filters import Filter, parse_filter
from hanlin.knowledge.info import KBInfo
from hanlin.knowledge.ingest import (
    FileStatusCallback,
    Ingestor,
    IngestReport,
    ProgressCallback,
    context_text,
)
from hanlin.knowledge.language import check_language, configured_model, embedder_for, record_choice
from hanlin.knowledge.loaders import LoaderOptions, supported_extensions
from hanlin.knowledge.parsing import ParseLimits, ParsePool
from hanlin.knowledge.reembed import reembed
from hanlin.knowledge.rerank import Reranker
from hanlin.knowledge.scan import classify, normalize_uri, scan
from hanlin.knowledge.search import Fusion, Mode, SearchResult, fuse
from hanlin.knowledge.stores.base import (
    STORES,
    DocumentRecord,
    SourceRecord,
    Store,
    StoredChunk,
)
from hanlin.knowledge.tokenize import Analyzer
from hanlin.knowledge.traced import traced_search
from hanlin.knowledge.uploads import (
    UPLOAD_SCHEME,
    drop_upload,
    read_upload,
    stored_upload_id,
    upload_dir,
)
from hanlin.models.embeddings.base import EmbeddingModel, get_embedder
from hanlin.net.ssrf import FetchedURL, safe_fetch
from hanlin.tracing.setup import configure as configure_tracing

_NAME_RE = re.compile(r"^[\w][\w.\-]{0,63}$")
#: dense weight in weighted fusion, per embedding model, from bench/retrieval.py measurements
DEFAULT_DENSE_WEIGHT = {"fast-use": 0.3, "e5-small": 0.5, "minilm-l6": 0.5}


def _check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise InvalidInputError(
            f"invalid knowledge-base name {name!r}",
            hint="use up to 64 letters, digits, '_', '-' or '.', starting with a letter or digit",
            param="name",
            code="invalid_kb_name",
            params={"name": name},
        )
    return name


class KnowledgeBase:
    """A knowledge base: add sources, keep them in sync, search them."""

    def __init__(
        self,
        name: str,
        settings: Settings | None = None,
        *,
        embedders: Callable[[str], EmbeddingModel] | None = None,
    ) -> None:
        """Open an existing knowledge base (see :meth:`create`).

        ``embedders`` maps a model name to an embedding model; a server passes one that shares
        loaded models between the knowledge bases it opens (default: a new instance each)."""
        self.settings = settings or load_settings()
        configure_tracing(self.settings)
        self.name = _check_name(name)
        self.path = self.settings.home / "kb" / name
        self.catalog = catalog(self.settings)
        store_name = self.catalog.store_of(name)
        if store_name is None:
            raise NotFoundError(
                f"no knowledge base named '{name}'",
                hint=did_you_mean(name, KnowledgeBase.names(self.settings))
                + f"create it with `hanlin kb create {name}`",
                code="kb_not_found",
                params={"kb": name},
            )
        ks = self.settings.knowledge
        self.analyzer = Analyzer()
        self.path.mkdir(parents=True, exist_ok=True)  # a replica opening a shared one
        self.store: Store = STORES.lookup(store_name)(
            self.path, analyzer_version=self.analyzer.version, settings=self.settings
        )
        self.embedding_model = self.store.get_meta("embedding_model") or configured_model(ks)
        self._embedder: EmbeddingModel | None = None
        self._embedders = embedders or get_embedder
        self._qcache: dict[str, Any] = {}
        self._parser: ParsePool | None = None  # parse workers, started by the first ingest
        self._retokenize_if_needed()

    # --- lifecycle ---------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        name: str,
        *,
        embedding_model: str | None = None,
        language: str | None = None,
        settings: Settings | None = None,
        exist_ok: bool = False,
    ) -> KnowledgeBase:
        """Create a knowledge base; ``embedding_model`` defaults to the configured one, whose
        ``"auto"`` picks it by ``language`` (default ``knowledge.language``; ``auto``: from the
        first documents ingested), as :mod:`hanlin.knowledge.language` describes."""
        settings = settings or load_settings()
        ks = settings.knowledge
        path = settings.home / "kb" / _check_name(name)
        access.require("kb:write", kb=name)
        kbs = catalog(settings)
        if kbs.store_of(name) is not None:
            if exist_ok:
                return cls(name, settings)
            raise AlreadyExistsError(
                f"knowledge base '{name}' already exists",
                hint=f"use it, or remove it with `hanlin kb rm {name}`",
                code="kb_exists",
                params={"kb": name},
            )
        open_store = STORES.lookup(settings.knowledge.store)  # before anything is written
        lang = check_language(language or ks.language)
        requested = embedding_model or ks.embedding_model
        auto = requested == "auto"  # language auto: the "*" model until the first documents
        model = get_embedder(embedder_for(lang, ks.language_embedders) if auto else requested)
        path.mkdir(parents=True, exist_ok=True)
        store = open_store(path, analyzer_version=Analyzer().version, settings=settings)
        store.set_meta("analyzer", Analyzer().version)
        store.set_meta("embedding_model", model.name)
        store.set_meta("embedding_space", f"{model.name}@{model.version}")
        store.set_meta("embedding_dim", str(model.dim))
        store.set_meta("created_at", str(time.time()))
        store.set_meta("language", lang)
        if auto and lang == "auto":
            store.set_meta("embedding_choice", "pending")
        store.close()
        kbs.record(name, settings.knowledge.store)  # last: now it is a knowledge base
        return cls(name, settings)

    @staticmethod
    def names(settings: Settings | None = None) -> list[str]:
        """Names of all knowledge bases."""
        return catalog(settings or load_settings()).names()

    @staticmethod
    def remove(name: str, settings: Settings | None = None) -> None:
        """Delete a knowledge base and everything it owns: its folder and the files uploaded
        to it (``HANLIN_HOME/uploads/<name>/``). The caller needs ``admin``. Every surface
        (``hanlin kb rm``, ``DELETE /api/kb/{name}``) removes through here."""
        access.require("admin", kb=name)
        kb = KnowledgeBase(name, settings)
        with kb.store.locked():
            kb.close()
            drop = getattr(kb.store, "drop", None)
            if drop is not None:  # a server store deletes its rows; a folder store has none
                drop()
            kb.catalog.forget(name)
            shutil.rmtree(kb.path, ignore_errors=True)
        shutil.rmtree(upload_dir(kb.settings, name), ignore_errors=True)

    def close(self) -> None:
        if self._parser is not None:
            self._parser.close()
            self._parser = None
        self.store.close()

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- embedding model -------------------------------------------------------------------
    @property
    def embedder(self) -> EmbeddingModel:
        """The knowledge base's embedding model; refuses a different vector space."""
        if self._embedder is None:
            model = self._embedders(self.embedding_model)
            recorded = self.store.get_meta("embedding_space")
            current = f"{model.name}@{model.version}"
            if recorded and recorded != current:
                raise EmbeddingModelMismatch(
                    f"knowledge base '{self.name}' was embedded with {recorded}, "
                    f"but the installed model is {current}; vectors cannot be mixed",
                    hint=f"re-embed it with `hanlin kb reembed {self.name}`",
                )
            self._embedder = model
        return self._embedder

    def _retokenize_if_needed(self) -> None:
        """Keyword tokens are stored per chunk; a new analyzer (version) re-derives them from
        the chunk texts, so index and query segmentation stay the same."""
        if self.store.get_meta("analyzer") == self.analyzer.version:
            return
        with self.store.locked():
            if self.store.get_meta("analyzer") == self.analyzer.version:
                return  # another process did it while we waited
            last = 0
            while rows := self.store.chunk_texts(last, 2000):
                self.store.set_tokens(
                    [r[0] for r in rows],
                    [" ".join(self.analyzer.analyze(context_text(t, h, x))) for _, t, x, h in rows],
                )
                last = rows[-1][0]
            self.store.set_meta("analyzer", self.analyzer.version)
            self.store.flush()

    def _query_vector(self, query: str) -> Any:
        """Query embeddings are cached per knowledge base (repeated and paged queries)."""
        cached = self._qcache.get(query)
        if cached is None:
            cached = self.embedder.embed_query(query)
            if len(self._qcache) >= 2048:
                self._qcache.pop(next(iter(self._qcache)))
            self._qcache[query] = cached
        return cached

    def reembed(self, model: str | None = None, progress: ProgressCallback | None = None) -> int:
        """Re-embed every chunk with ``model`` (default: the recorded model's current version),
        leaving the knowledge base as it was on any failure (:mod:`hanlin.knowledge.reembed`).
        Returns the number of chunks that carry the new model's vectors."""
        return reembed(self, model, progress)

    # --- writing -------------------------------------------------------------------------------
    def _ingestor(self, on_file: FileStatusCallback | None = None) -> Ingestor:
        ks = self.settings.knowledge
        return Ingestor(
            self.store,
            self.embedder,
            self.analyzer,
            chunk_tokens=ks.chunk_tokens,
            chunk_overlap=ks.chunk_overlap,
            max_file_bytes=ks.max_file_mb << 20,
            embed_workers=ks.embed_workers,
            on_file=on_file,
            parser=self._parse_pool(),
            choose_embedder=self._choose_embedder
            if self.store.get_meta("embedding_choice") == "pending"
            else None,
            mask=ingest_detector(self.settings.guard, self.name) if self.masks_pii else None,
        )

    @property
    def masks_pii(self) -> bool:
        """Whether ingest masks personal data (``kb add --mask-pii`` once, recorded in the
        knowledge base; or ``guard.kbs.<name>.mask_ingest``)."""
        rule = self.settings.guard.kbs.get(self.name)
        if rule is not None and rule.mask_ingest is not None:
            return rule.mask_ingest
        return self.store.get_meta("mask_pii") == "on"

    def _choose_embedder(self, texts: list[str]) -> EmbeddingModel:
        """The first ingest into a knowledge base created with embedding model and language
        ``auto`` records the model for the language of its first texts (before any vector)."""
        table = self.settings.knowledge.language_embedders
        recorded = record_choice(self.store, texts, table, self._embedders)
        if recorded != self.embedding_model:  # chosen here, or by another process meanwhile
            self.embedding_model, self._embedder = recorded, None
            self._qcache.clear()
        return self.embedder

    def _parse_pool(self) -> ParsePool:
        """The parse workers, kept for the next ``add`` (a server job adds file by file)."""
        if self._parser is None:
            self._parser = ParsePool(ParseLimits.from_settings(self.settings.knowledge))
        return self._parser

    def _fetch(self, url: str, max_bytes: int) -> FetchedURL:
        """URL sources go through the SSRF guard (``knowledge.allow_private_urls``); uploads
        kept in the shared database (``upload://``) are read from there."""
        if url.startswith(UPLOAD_SCHEME):
            return FetchedURL(url, 200, read_upload(self.settings, self.name, url), None)
        return safe_fetch(
            url,
            allow_private=self.settings.knowledge.allow_private_urls,
            max_bytes=max_bytes,
            timeout=30.0,
        )

    def add(
        self,
        *items: str | Path,
        loader_options: LoaderOptions | None = None,
        progress: ProgressCallback | None = None,
        on_file: FileStatusCallback | None = None,
        stop: Callable[[], bool] | None = None,
        per_item: Sequence[LoaderOptions] | None = None,
        mask_pii: bool = False,
    ) -> IngestReport:
        """Add files, folders (recursively), globs or URLs, and ingest them now, in one pass
        (``per_item``: loader options for each item, in order, instead of ``loader_options``).

        ``on_file`` hears each file's stage (parsing, embedding, done, failed + reason).
        ``stop`` is asked between files: once it returns true the ingest ends after the current
        file, with what was read stored and the files left in ``report.cancelled`` (a later
        ``sync`` ingests them). ``mask_pii``: mask personal data in what is stored, from now on
        for every ``add`` and ``sync`` of this knowledge base (recorded in it; irreversible for
        what is ingested, see :mod:`hanlin.knowledge.masking`)."""
        access.require("kb:write", kb=self.name)
        if mask_pii and self.store.get_meta("mask_pii") != "on":
            self.store.set_meta("mask_pii", "on")
        if not items:
            raise InvalidInputError("nothing to add", hint="name files, folders, globs or URLs")
        options = [loader_options or LoaderOptions()] * len(items)
        if per_item is not None:
            if len(per_item) != len(items):
                raise InvalidInputError("per_item needs one LoaderOptions per item")
            options = list(per_item)
        sources = [
            self.store.add_source(
                normalize_uri(str(item)),
                classify(str(item)),
                opts.model_dump(exclude_defaults=True),
            )
            for item, opts in zip(items, options, strict=True)
        ]
        return self._ingest(sources, progress, full_sync=False, on_file=on_file, stop=stop)

    def sync(
        self,
        progress: ProgressCallback | None = None,
        on_file: FileStatusCallback | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> IngestReport:
        """Re-scan every source: new and changed files are ingested, deleted ones removed,
        unchanged ones skipped. Also finishes an ingest that was interrupted. ``stop`` as in
        :meth:`add`."""
        access.require("kb:write", kb=self.name)
        return self._ingest(
            self.store.list_sources(), progress, full_sync=True, on_file=on_file, stop=stop
        )

    def _ingest(
        self,
        sources: Sequence[SourceRecord],
        progress: ProgressCallback | None,
        *,
        full_sync: bool,
        on_file: FileStatusCallback | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> IngestReport:
        started = time.monotonic()
        report = IngestReport()
        ingestor = self._ingestor(on_file)
        supported = supported_extensions()
        files: list[tuple[Path, int, LoaderOptions]] = []
        seen: set[str] = set()
        urls: list[SourceRecord] = []
        scanned: list[SourceRecord] = []
        for src in sources:
            if src.kind == "url":
                urls.append(src)
                continue
            result = scan(src.uri, src.kind, supported)
            report.skipped.extend(result.skipped)
            report.ignored += result.ignored
            options = LoaderOptions(**src.options)
            if not any(s.path == src.uri for s in result.skipped):
                scanned.append(src)
            for f in result.files:
                if str(f) not in seen:
                    seen.add(str(f))
                    files.append((f, src.id, options))
        try:
            ingestor.ingest_files(files, report, progress, stop)
            for src in urls:
                seen.add(src.uri)
                if report.cancelled or (stop is not None and stop()):
                    report.cancelled.append(src.uri)
                    continue
                ingestor.ingest_url(
                    src.uri, src.id, LoaderOptions(**src.options), report, self._fetch
                )
        finally:
            ingestor.close()
        report.documents_deleted += self._forget_missing(scanned, seen, full_sync)
        self.store.flush()
        report.seconds = time.monotonic() - started
        return report

    def _forget_missing(
        self, scanned: Sequence[SourceRecord], seen: set[str], full_sync: bool
    ) -> int:
        """Remove files that vanished from their source (or from every source, on sync)."""
        ids = {s.id for s in scanned}
        urls = {s.uri for s in self.store.list_sources() if s.kind == "url"}
        deleted = 0
        for rec in self.store.list_files():
            if rec.path in seen or rec.path in urls:
                continue
            if full_sync or (rec.source_id in ids and not Path(rec.path).exists()):
                deleted += self.store.delete_file(rec.path)
        return deleted

    def delete_document(self, key: str) -> bool:
        """Delete one document (by key as ``kb docs`` shows it). A later ``sync`` brings it
        back only if its file changes. The last document of an upload takes the upload with
        it: its source and its stored bytes (nothing would ever read them again)."""
        access.require("kb:write", kb=self.name)
        key = self._stored_key(key)
        with self.store.locked():
            record = self.store.get_document(key)
            n = self.store.delete_documents([key])
            source = record.source if record else ""
            if (
                stored_upload_id(source, upload_dir(self.settings, self.name))
                and not self.store.document_hashes(source)
                and source in {s.uri for s in self.store.list_sources()}
            ):
                self.store.remove_source(source)
                drop_upload(self.settings, self.name, source)
            self.store.flush()
        return n > 0

    def _stored_key(self, key: str) -> str:
        """The key a document is stored under, given that key or the public one API clients
        see (:meth:`public_names`); ``key`` itself when no document matches."""
        if self.store.get_document(key) is not None:
            return key
        names = self.public_names()
        return next((d.key for d in self.documents() if names.key(d.key) == key), key)

    # --- reading -------------------------------------------------------------------------------
    def chunks(self, key: str) -> list[StoredChunk]:
        """One document's chunks in reading order, by its stored or public key.

        Raises NotFoundError when the knowledge base has no such document."""
        access.require("kb:read", kb=self.name)
        stored = self._stored_key(key)
        if self.store.get_document(stored) is None:
            raise NotFoundError(
                f"no document '{key}' in '{self.name}'",
                hint=f"list them with `hanlin kb docs {self.name}`",
                code="document_not_found",
                params={"kb": self.name, "document": key},
            )
        return self.store.document_chunks(stored)

    def documents(self, limit: int | None = None) -> list[DocumentRecord]:
        access.require("kb:read", kb=self.name)
        return self.store.list_documents(limit)

    def public_names(self) -> SourceNames:
        """How API clients see this knowledge base's sources: relative to the folder they
        were added from, uploads by their upload name (:mod:`hanlin.knowledge.display`)."""
        access.require("kb:read", kb=self.name)
        return SourceNames(self.store.list_sources())

    def info(self) -> KBInfo:
        access.require("kb:read", kb=self.name)
        failures = [f for f in self.store.list_files() if f.status == "failed"]
        return KBInfo(
            name=self.name,
            path=self.path,
            embedding_model=self.embedding_model,
            embedding_space=self.store.get_meta("embedding_space") or "",
            analyzer=self.analyzer.version,
            created_at=float(self.store.get_meta("created_at") or 0),
            stats=self.store.stats(),
            sources=self.store.list_sources(),
            failures=failures,
        )

    @traced_search
    def search(
        self,
        query: str,
        *,
        k: int = 10,
        mode: Mode = "hybrid",
        filters: dict[str, Any] | Filter | None = None,
        fusion: Fusion | None = None,
        dense_weight: float | None = None,
        candidates: int | None = None,
        reranker: Reranker | None = None,
        query_vector: Any = None,
    ) -> list[SearchResult]:
        """Search the knowledge base.

        ``mode``: ``dense`` (vectors), ``keyword`` (BM25) or ``hybrid`` (both, fused).
        ``filters``: metadata conditions, see :mod:`hanlin.knowledge.filters`.
        Each result carries the raw score from each retriever and its rank there.
        ``query_vector`` skips embedding the query (it must come from the same model).
        """
        access.require("kb:read", kb=self.name)
        if mode not in ("dense", "keyword", "hybrid"):
            raise InvalidInputError(
                f"unknown search mode {mode!r}", hint="use dense, keyword or hybrid"
            )
        if k < 1:
            raise InvalidInputError("k must be at least 1", hint="pass -k 10")
        flt = parse_filter(filters)
        n_cand = candidates or max(k * 3, 30)
        ks = self.settings.knowledge
        dense: list[tuple[int, float]] = []
        keyword: list[tuple[int, float]] = []
        qvec = None
        if mode in ("dense", "hybrid"):
            qvec = self._query_vector(query) if query_vector is None else query_vector
            dense = self.store.dense_search(qvec, n_cand if mode == "hybrid" else k, flt)
        if mode in ("keyword", "hybrid"):
            tokens = self.analyzer.analyze(query)
            keyword = self.store.keyword_search(tokens, n_cand if mode == "hybrid" else k, flt)
        if mode == "hybrid":
            assert qvec is not None
            ids = list(dict.fromkeys([c for c, _ in keyword] + [c for c, _ in dense]))
            weight = (
                dense_weight
                if dense_weight is not None
                else DEFAULT_DENSE_WEIGHT.get(self.embedding_model, ks.dense_weight)
            )
            fused = fuse(
                dense,
                keyword,
                dense_scores=self.store.score_dense(qvec, ids),
                method=fusion or ks.fusion,
                dense_weight=weight,
                rrf_k=ks.rrf_k,
            )
        else:
            name = mode
            fused = [(c, s, {name: s}, {name: i + 1}) for i, (c, s) in enumerate(dense or keyword)]
        top = fused[: max(k, n_cand if reranker else k)]
        chunks = {c.id: c for c in self.store.get_chunks([c for c, *_ in top])}
        results = [
            SearchResult(chunks[c], s, raw, ranks) for c, s, raw, ranks in top if c in chunks
        ]
        if reranker and results:
            scores = reranker.rerank(query, [r.chunk.text for r in results])
            for r, s in zip(results, scores, strict=True):
                r.scores["rerank"] = float(s)
                r.score = float(s)
            results.sort(key=lambda r: -r.score)
        return results[:k]


__all__ = ["IngestReport", "KBInfo", "KnowledgeBase", "SkippedFile"]
