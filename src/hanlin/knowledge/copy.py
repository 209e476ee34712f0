"""``hanlin kb copy``: move a knowledge base between the embedded store and a PostgreSQL
database (either way), verified.

Everything the source store holds is copied as written — sources, file records, documents,
chunks with their keyword tokens, text hashes and vectors — so nothing is re-parsed or
re-embedded. The copy is then checked: equal document, chunk and vector counts, and the same
top-10 hybrid results for a sample of queries drawn from the knowledge base's own text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hanlin.access import caller as access
from hanlin.config import Settings, load_settings
from hanlin.db.url import check_url, redact
from hanlin.errors import AlreadyExistsError, InvalidInputError
from hanlin.knowledge.catalog import catalog
from hanlin.knowledge.kb import KnowledgeBase

#: store meta keys that describe how the knowledge base was built
_META = (
    "analyzer",
    "embedding_model",
    "embedding_space",
    "embedding_dim",
    "language",
    "embedding_choice",
    "created_at",
)
_BATCH = 200

#: ``progress(done, total)`` after every batch of documents
CopyProgress = Callable[[int, int], None]


@dataclass(slots=True)
class CopyReport:
    """What was copied and how it was checked."""

    source: str
    target: str
    where: str
    documents: int
    chunks: int
    vectors: int
    queries: int
    mismatched_queries: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatched_queries


def target_settings(settings: Settings, to: str) -> Settings:
    """The settings of the copy's side: ``embedded`` or a ``postgresql://`` URL."""
    if to == "embedded":
        target = load_settings(home=settings.home, database_url=None)
        target.knowledge.store = "sqlite"
    else:
        target = load_settings(home=settings.home, database_url=check_url(to))
        target.knowledge.store = "postgres"
    return target


def copy_kb(
    name: str,
    to: str,
    *,
    as_name: str | None = None,
    settings: Settings | None = None,
    sample: int = 20,
    progress: CopyProgress | None = None,
) -> CopyReport:
    """Copy knowledge base ``name`` to ``to`` (``embedded`` or a PostgreSQL URL) as
    ``as_name`` (default: the same name); returns the verified :class:`CopyReport`."""
    settings = settings or load_settings()
    access.require("admin", kb=name)
    new = as_name or name
    target = target_settings(settings, to)
    where = "embedded" if to == "embedded" else redact(to)
    if (target.database_url or None) == (settings.database_url or None) and new == name:
        raise InvalidInputError(
            f"'{name}' would be copied onto itself",
            hint="name another place with --to, or another name with --as",
        )
    if catalog(target).store_of(new) is not None:
        raise AlreadyExistsError(
            f"a knowledge base '{new}' already exists in {where}",
            hint=f"pick another name with --as, or remove it there first (`hanlin kb rm {new}`)",
        )
    src = KnowledgeBase(name, settings)
    try:
        dst = _create_like(src, new, target)
        try:
            _copy_rows(src, dst, progress)
            return _verify(src, dst, where, sample)
        finally:
            dst.close()
    finally:
        src.close()


def _create_like(src: KnowledgeBase, new: str, target: Settings) -> KnowledgeBase:
    dst = KnowledgeBase.create(new, embedding_model=src.embedding_model, settings=target)
    for key in _META:
        value = src.store.get_meta(key)
        if value is not None:
            dst.store.set_meta(key, value)
    dst.close()
    return KnowledgeBase(new, target)


def _copy_rows(src: KnowledgeBase, dst: KnowledgeBase, progress: CopyProgress | None) -> None:
    ids = {
        s.id: dst.store.add_source(s.uri, s.kind, s.options).id for s in src.store.list_sources()
    }
    keys = [d.key for d in src.store.list_documents()]
    for i in range(0, len(keys), _BATCH):
        dst.store.write(src.store.export_documents(keys[i : i + _BATCH]))
        if progress:
            progress(min(i + _BATCH, len(keys)), len(keys))
    files = src.store.list_files()
    for f in files:
        f.source_id = ids.get(f.source_id, f.source_id)
    dst.store.write([], files=files)
    dst.store.flush()


def _verify(src: KnowledgeBase, dst: KnowledgeBase, where: str, sample: int) -> CopyReport:
    a, b = src.store.stats(), dst.store.stats()
    if (a.documents, a.chunks, a.vectors) != (b.documents, b.chunks, b.vectors):
        raise InvalidInputError(
            f"the copy in {where} differs: {b.documents}/{b.chunks}/{b.vectors} documents/"
            f"chunks/vectors, the source has {a.documents}/{a.chunks}/{a.vectors}",
            hint="another process wrote to the source meanwhile; remove the copy and retry",
        )
    ids = list(src.store.iter_chunk_ids())
    step = max(1, len(ids) // max(sample, 1))
    queries = [" ".join(c.text.split()[:8]) for c in src.store.get_chunks(ids[::step][:sample])]
    mismatched = []
    for q in queries:
        mine = [(r.chunk.doc_key, r.chunk.ord) for r in src.search(q, k=10)]
        theirs = [(r.chunk.doc_key, r.chunk.ord) for r in dst.search(q, k=10)]
        if mine != theirs:
            mismatched.append(q)
    return CopyReport(
        source=src.name,
        target=dst.name,
        where=where,
        documents=b.documents,
        chunks=b.chunks,
        vectors=b.vectors,
        queries=len(queries),
        mismatched_queries=mismatched,
    )
