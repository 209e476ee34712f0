"""Open knowledge bases shared by requests.

A :class:`~hanlin.knowledge.kb.KnowledgeBase` holds one SQLite connection and in-memory index
state, so one instance serves one request at a time. Each knowledge base gets a small pool of
instances: a request checks one out, uses it (blocking calls in a worker thread), and returns
it. After an ingestion job writes, the pool's generation moves on and older instances are
closed as they come back, so readers always see what the writer committed. An instance also
remembers the vector space (embedding model) it was opened with: when another process has
re-embedded the knowledge base since (``hanlin kb reembed`` beside a running server), the next
checkout finds the recorded space changed and replaces every instance, so queries are embedded
with the new model.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import asynccontextmanager
from typing import TypeVar

from hanlin.config import Settings
from hanlin.errors import NotFoundError, did_you_mean
from hanlin.knowledge.kb import KnowledgeBase
from hanlin.models.embeddings.base import EmbeddingModel, get_embedder

T = TypeVar("T")
log = logging.getLogger("hanlin.knowledge.pool")


class _Pool:
    def __init__(self, size: int) -> None:
        self.slots = asyncio.Semaphore(size)
        #: (generation, vector space when opened, instance)
        self.idle: list[tuple[int, str | None, KnowledgeBase]] = []


class KnowledgeBases:
    """The knowledge bases this server serves (all, or those named by ``hanlin serve --kb``)."""

    def __init__(
        self, settings: Settings, only: Collection[str] | None = None, per_kb: int = 4
    ) -> None:
        self.settings = settings
        self.only = set(only) if only else None
        self.per_kb = per_kb
        self._pools: dict[str, _Pool] = {}
        self._generation: dict[str, int] = {}
        self._lock = threading.Lock()
        self._closed = False
        #: id of a checked-out instance → its generation and the vector space it was opened with
        self._out: dict[int, tuple[int, str | None]] = {}
        self._embedders: dict[str, EmbeddingModel] = {}

    # -- names -----------------------------------------------------------------------------
    def visible(self, name: str) -> bool:
        return self.only is None or name in self.only

    def names(self) -> list[str]:
        return [n for n in KnowledgeBase.names(self.settings) if self.visible(n)]

    def check(self, name: str) -> None:
        """Raise NotFoundError unless ``name`` exists and is served."""
        if not self.visible(name) or name not in KnowledgeBase.names(self.settings):
            raise NotFoundError(
                f"no knowledge base named '{name}'",
                hint=did_you_mean(name, self.names())
                + "list them with GET /api/kb, create one with POST /api/kb"
                + ("" if self.only is None else " (this server serves only some: --kb)"),
                code="kb_not_found",
                params={"kb": name},
            )

    # -- instances -------------------------------------------------------------------------
    def embedder(self, name: str) -> EmbeddingModel:
        """One loaded embedding model per name, shared by every instance (readers and jobs):
        a model is hundreds of MB and seconds to load. Thread-safe."""
        with self._lock:
            model = self._embedders.get(name)
            if model is None:
                model = self._embedders[name] = get_embedder(name)
            return model

    def open(self, name: str, settings: Settings | None = None) -> KnowledgeBase:
        """A new instance of ``name`` sharing the loaded embedding models (blocking)."""
        return KnowledgeBase(name, settings or self.settings, embedders=self.embedder)

    def generation(self, name: str) -> int:
        with self._lock:
            return self._generation.get(name, 0)

    def invalidate(self, name: str) -> None:
        """A writer changed ``name`` (or removed it): stop reusing older instances.
        Safe to call from any thread."""
        with self._lock:
            self._generation[name] = self._generation.get(name, 0) + 1

    async def checkout(self, name: str) -> KnowledgeBase:
        """An instance of ``name`` for this caller alone (404 if it does not exist); give it
        back with :meth:`checkin`."""
        self.check(name)
        pool = self._pools.get(name)
        if pool is None:
            pool = self._pools.setdefault(name, _Pool(self.per_kb))
        await pool.slots.acquire()
        try:
            gen = self.generation(name)
            while pool.idle:
                old_gen, space, candidate = pool.idle.pop()
                if old_gen == gen and not self._reembedded(name, candidate, space):
                    self._out[id(candidate)] = (gen, space)
                    return candidate
                candidate.close()
                gen = self.generation(name)
            kb = await asyncio.to_thread(self.open, name)
            self._out[id(kb)] = (gen, kb.store.get_meta("embedding_space"))
            return kb
        except BaseException:
            pool.slots.release()
            raise

    def checkin(self, name: str, kb: KnowledgeBase, *, clean: bool = True) -> None:
        """Give an instance back. ``clean=False`` (an error or a cancellation: a worker thread
        may still be using it) drops it without closing; it is freed when that thread ends."""
        pool = self._pools.get(name)
        gen, space = self._out.pop(id(kb), (-1, None))
        if clean and pool is not None and not self._closed and self.generation(name) == gen:
            pool.idle.append((gen, space, kb))
        elif clean:
            kb.close()
        if pool is not None:
            pool.slots.release()

    @asynccontextmanager
    async def use(self, name: str) -> AsyncIterator[KnowledgeBase]:
        """Check out an instance for the length of the block."""
        kb = await self.checkout(name)
        clean = False
        try:
            yield kb
            clean = True
        finally:
            self.checkin(name, kb, clean=clean)

    async def run(self, name: str, fn: Callable[[KnowledgeBase], T]) -> T:
        """``fn(kb)`` in a worker thread, with an instance of ``name`` checked out."""
        async with self.use(name) as kb:
            return await asyncio.to_thread(fn, kb)

    def _reembedded(self, name: str, kb: KnowledgeBase, space: str | None) -> bool:
        """Whether the knowledge base's recorded vector space is no longer the one ``kb`` was
        opened with (another process re-embedded it); if so, every older instance goes."""
        recorded = kb.store.get_meta("embedding_space")  # indexed rows: cheap on the loop
        model = kb.store.get_meta("embedding_model")
        if recorded == space and model in (None, kb.embedding_model):
            return False
        log.info("knowledge base %s was re-embedded (%s → %s): reopening", name, space, recorded)
        self.invalidate(name)
        return True

    def drop(self, name: str) -> None:
        """Close the idle instances of ``name`` (before it is removed)."""
        self.invalidate(name)
        pool = self._pools.pop(name, None)
        if pool is not None:
            for _, _, kb in pool.idle:
                kb.close()
            pool.idle.clear()

    def close(self) -> None:
        self._closed = True
        for name in list(self._pools):
            self.drop(name)
