"""The ANN vector index: usearch HNSW (cosine), chosen by measurement (bench/ann_engines.py):
faiss HNSW is ~2× faster per query but cannot remove vectors (``remove_ids`` is not
implemented for HNSW), which incremental sync needs; usearch removes in place, ~0.5 ms/query.

Vectors are stored as float16 in the index (half the memory of float32). The graph is built
with ``expansion_add`` 96: on hard synthetic 512-d clusters at 200k vectors it reaches recall@10
1.000 where 48 stops at 0.970 (and 0.83 at 1M), for 2.5× the insert time — still small next to
embedding. The float32 originals stay in SQLite; hybrid fusion scores candidates from those.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from usearch.index import Index

from hanlin.knowledge.indexes import read_sidecar, write_sidecar

Vector = npt.NDArray[np.float32]
#: HNSW build parameters; a change rebuilds existing indexes from SQLite.
PARAMS: dict[str, Any] = {"dtype": "f16", "connectivity": 16, "expansion_add": 96}
#: candidates examined per query; a search-time setting (recall 0.99 at 100k with 96 but 0.96
#: at 200k, so it is sized for millions: bench/ann_engines.py, bench/latency.py)
EXPANSION_SEARCH = 200


class VectorIndex:
    """An HNSW index over chunk ids, persisted to ``<dir>/vectors.usearch`` + a sidecar."""

    def __init__(self, directory: Path, dim: int, space: str) -> None:
        self.path = directory / "vectors.usearch"
        self.sidecar = directory / "vectors.json"
        self.dim = dim
        self.space = space  # embedding model name + version: a different space is a rebuild
        self.applied_seq = 0
        self._index = self._new()
        state = read_sidecar(self.sidecar)
        built_with = (state or {}).get("params") or {}
        if (
            state
            and state.get("space") == space
            and state.get("dim") == dim
            and {k: built_with.get(k) for k in PARAMS} == PARAMS
            and self.path.exists()
        ):
            try:
                self._index = Index.restore(str(self.path), view=False) or self._new()
                self._index.expansion_search = EXPANSION_SEARCH  # type: ignore[misc]
                self.applied_seq = int(state.get("seq", 0))
            except (RuntimeError, ValueError, OSError):
                self._index = self._new()
                self.applied_seq = 0
            if len(self._index) != int(state.get("count", -1)):
                self._index = self._new()
                self.applied_seq = 0

    def _new(self) -> Index:
        return Index(
            ndim=self.dim,
            metric="cos",
            dtype=PARAMS["dtype"],
            connectivity=PARAMS["connectivity"],
            expansion_add=PARAMS["expansion_add"],
            expansion_search=EXPANSION_SEARCH,
        )

    def __len__(self) -> int:
        return len(self._index)

    def reset(self) -> None:
        self._index = self._new()
        self.applied_seq = 0

    def upsert(self, ids: Sequence[int], vectors: Vector) -> None:
        if not len(ids):
            return
        keys = np.asarray(ids, dtype=np.uint64)
        present = [int(k) for k in keys if int(k) in self._index]
        if present:
            self._index.remove(np.asarray(present, dtype=np.uint64))
        self._index.add(keys, np.ascontiguousarray(vectors, dtype=np.float32))

    def delete(self, ids: Sequence[int]) -> None:
        present = [i for i in ids if i in self._index]
        if present:
            self._index.remove(np.asarray(present, dtype=np.uint64))

    def search(self, vector: Vector, k: int, *, exact: bool = False) -> list[tuple[int, float]]:
        if len(self._index) == 0 or k <= 0:
            return []
        m = self._index.search(
            np.asarray(vector, dtype=np.float32), min(k, len(self._index)), exact=exact
        )
        return [(int(key), 1.0 - float(d)) for key, d in zip(m.keys, m.distances, strict=True)]

    def save(self) -> None:
        """Persist atomically (temp file + rename), then the sidecar with the applied seq."""
        tmp = self.path.with_suffix(".usearch.tmp")
        self._index.save(str(tmp))
        os.replace(tmp, self.path)
        write_sidecar(
            self.sidecar,
            {
                "seq": self.applied_seq,
                "space": self.space,
                "dim": self.dim,
                "count": len(self._index),
                "params": PARAMS,
            },
        )
