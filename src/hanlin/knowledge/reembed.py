"""Re-embedding a knowledge base with another embedding model, without ever leaving it broken:
the model is loaded and checked first, the new vectors are staged beside the live ones
(resumable), and vectors and model are swapped in one transaction once every chunk has one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hanlin.access import caller as access
from hanlin.errors import HanlinError
from hanlin.knowledge.ingest import context_text
from hanlin.models.embeddings.base import EmbeddingModel, available_embedders, get_embedder

if TYPE_CHECKING:
    from hanlin.knowledge.kb import KnowledgeBase, ProgressCallback


class ReembedCancelled(HanlinError):
    """``stop`` asked a re-embed to end: the knowledge base is unchanged, a rerun resumes."""


def reembed(
    kb: KnowledgeBase,
    model: str | None = None,
    progress: ProgressCallback | None = None,
    stop: Callable[[], bool] | None = None,
) -> int:
    """Re-embed every chunk with ``model`` (default: the recorded model's current version).

    The model is loaded first, so an unknown or uninstalled one fails before anything is
    written. The new vectors are staged beside the live ones and swapped in, with the model
    recorded, in one transaction once every chunk has one: until then search keeps the old
    model, and an error, Ctrl-C or kill leaves the knowledge base as it was. Running it again
    with the same model resumes where it stopped. Returns the number of chunks that carry
    the new model's vectors. A failure raises a
    :class:`~hanlin.errors.HanlinError` whose hint says the knowledge base is unchanged.
    ``stop`` is asked between batches: once it returns true the re-embed ends, before the swap,
    with :class:`ReembedCancelled` (the staged vectors are kept for a rerun to resume)."""
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
        if stop is not None and stop():
            raise ReembedCancelled(
                f"re-embedding '{kb.name}' was cancelled after {done} of {total} chunks",
                hint=f"the knowledge base is unchanged (still searchable with "
                f"{kb.embedding_model}); re-embedding with {name} again resumes",
                code="reembed_cancelled",
                params={"kb": kb.name, "done": done, "total": total},
            )
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
    except ReembedCancelled:
        raise
    except Exception as exc:
        stopped = f"re-embedding stopped after {done} of {total} chunks"
        raise _unchanged(kb, exc, stopped, name, resumable=True) from exc
    kb.embedding_model, kb._embedder = new.name, new
    kb._qcache.clear()
    return store.stats().chunks


@dataclass(slots=True)
class EmbedderChoice:
    """A registered embedding model and whether it can run here (``reason`` + ``hint`` if not)."""

    name: str
    dim: int | None
    available: bool
    reason: str | None = None
    hint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dim": self.dim,
            "available": self.available,
            "reason": self.reason,
            "hint": self.hint,
        }


def embedder_choices(load: Callable[[str], EmbeddingModel] = get_embedder) -> list[EmbedderChoice]:
    """The models a knowledge base can be re-embedded with: every registered one, loaded and
    tried on one text, so a missing package or broken weights show here rather than in a
    failed re-embed. ``load`` is how a model is got by name (a server shares loaded ones).
    Loads each model's weights: seconds the first time."""
    return [embedder_choice(name, load) for name in sorted(available_embedders())]


def embedder_choice(
    name: str, load: Callable[[str], EmbeddingModel] = get_embedder
) -> EmbedderChoice:
    """Whether the embedding model ``name`` can run here (see :func:`embedder_choices`); an
    unknown name is unavailable, with the closest registered names in its hint."""
    try:
        model = load(name)
        probe = np.asarray(model.embed_documents(["a probe"]))
        if probe.shape != (1, model.dim):
            raise ValueError(f"it returned vectors of shape {probe.shape}, not (1, {model.dim})")
    except Exception as exc:
        reason = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        return EmbedderChoice(name, None, False, reason, getattr(exc, "hint", None))
    return EmbedderChoice(name, model.dim, True)


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
