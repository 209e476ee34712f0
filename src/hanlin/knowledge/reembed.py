"""Re-embedding a knowledge base with another embedding model, without ever leaving it broken:
the model is loaded and checked first, the new vectors are staged beside the live ones
(resumable), and vectors and model are swapped in one transaction once every chunk has one."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from hanlin.access import caller as access
from hanlin.errors import HanlinError
from hanlin.knowledge.ingest import context_text
from hanlin.models.embeddings.base import EmbeddingModel, get_embedder

if TYPE_CHECKING:
    from hanlin.knowledge.kb import KnowledgeBase, ProgressCallback


def reembed(
    kb: KnowledgeBase, model: str | None = None, progress: ProgressCallback | None = None
) -> int:
    """Re-embed every chunk with ``model`` (default: the recorded model's current version).

    The model is loaded first, so an unknown or uninstalled one fails before anything is
    written. The new vectors are staged beside the live ones and swapped in, with the model
    recorded, in one transaction once every chunk has one: until then search keeps the old
    model, and an error, Ctrl-C or kill leaves the knowledge base as it was. Running it again
    with the same model resumes where it stopped. Returns the number of chunks that carry
    the new model's vectors. A failure raises a
    :class:`~hanlin.errors.HanlinError` whose hint says the knowledge base is unchanged."""
    access.require("kb:write", kb=kb.name)
    name = model or kb.embedding_model
    new = _load_embedder(kb, name)
    space = f"{new.name}@{new.version}"
    store = kb.store
    if store.count_staged_vectors(space) == 0:
        store.discard_staged_vectors()  # left by an unfinished re-embed to another model
    total = store.stats().chunks
    done = store.count_staged_vectors(space)

    def stage(batch: list[tuple[int, str, str, list[str]]]) -> None:
        nonlocal done
        # the text ingest embeds: title and section path first
        vectors = new.embed_documents([context_text(t, h, x) for _, t, x, h in batch])
        store.stage_vectors(space, [row[0] for row in batch], vectors)
        done += len(batch)
        if progress:
            progress(done, max(total, done), "")

    try:
        if progress:
            progress(done, total, "")
        while batch := store.chunks_without_staged_vectors(space, new.batch_size * 4):
            stage(batch)
        with store.locked():  # chunks added meanwhile, then the swap, with no writer between
            while batch := store.chunks_without_staged_vectors(space, new.batch_size * 4):
                stage(batch)
            store.swap_staged_vectors(
                space,
                {
                    "embedding_model": new.name,
                    "embedding_space": space,
                    "embedding_dim": str(new.dim),
                },
            )
    except Exception as exc:
        stopped = f"re-embedding stopped after {done} of {total} chunks"
        raise _unchanged(kb, exc, stopped, name, resumable=True) from exc
    kb.embedding_model, kb._embedder = new.name, new
    kb._qcache.clear()
    return store.stats().chunks


def _load_embedder(kb: KnowledgeBase, name: str) -> EmbeddingModel:
    """``name``'s embedding model, loaded and checked on one text."""
    try:
        model = get_embedder(name)
        probe = np.asarray(model.embed_documents(["a probe"]))
    except Exception as exc:
        raise _unchanged(kb, exc, f"cannot load the embedding model {name}", name) from exc
    if probe.shape != (1, model.dim):
        raise _unchanged(
            kb,
            ValueError(f"it returned vectors of shape {probe.shape}, not (1, {model.dim})"),
            f"the embedding model {name} is broken",
            name,
        )
    return model


def _unchanged(
    kb: KnowledgeBase, cause: Exception, what: str, model: str, *, resumable: bool = False
) -> HanlinError:
    """A re-embed failure: what failed, the cause's hint, and that nothing changed."""
    if isinstance(cause, HanlinError):
        reason, hint = cause.message, cause.hint or "see `hanlin kb reembed --help`"
    else:
        reason, hint = f"{type(cause).__name__}: {cause}", "see `hanlin kb reembed --help`"
    hint += (
        f"; the knowledge base '{kb.name}' is unchanged (still searchable with "
        f"{kb.embedding_model})"
    )
    if resumable:
        hint += f"; once fixed, `hanlin kb reembed {kb.name} --model {model}` resumes"
    error = HanlinError(f"{what}: {reason}", hint=hint)
    if isinstance(cause, HanlinError):
        error.exit_code = cause.exit_code
    return error
