"""The dense vector index: exact (a flat matrix) while a collection is small, usearch HNSW
(cosine) once it grows past ``hnsw_above`` vectors.

Below that size an exact scan is as fast as a graph search (20k × 512 floats: ~3 ms) and gives
recall 1.0, and building a graph would cost ~0.35 ms per vector at ingest (a third of an
ingest's non-embedding work on a 10k-chunk corpus) for nothing. Crossing the threshold builds the
graph once from the flat vectors; after that the index stays a graph.

HNSW engine, chosen by measurement (bench/ann_engines.py): faiss HNSW is ~2× faster per query
but cannot remove vectors (``remove_ids`` is not implemented for HNSW), which incremental sync
needs; usearch removes in place, ~0.5 ms/query. Graph vectors are float16 (half the memory);
``expansion_add`` 96 reaches recall@10 1.000 on hard synthetic 512-d clusters at 200k vectors
where 48 stops at 0.970 (0.83 at 1M), for 2.5× the insert time. The float32 originals stay in
SQLite; hybrid fusion scores candidates from those.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hanlin.models.embeddings.minilm import preload_onnxruntime

preload_onnxruntime()  # before usearch: loaded after it, onnxruntime crashes the process

from usearch.index import Index  # noqa: E402

from hanlin.fileio import atomic_path  # noqa: E402
from hanlin.knowledge.indexes import read_sidecar, write_sidecar  # noqa: E402
from hanlin.models.embeddings.base import normalize  # noqa: E402

Vector = npt.NDArray[np.float32]
#: HNSW build parameters; a change rebuilds existing indexes from SQLite.
PARAMS: dict[str, Any] = {"dtype": "f16", "connectivity": 16, "expansion_add": 96}
#: candidates examined per query; a search-time setting (recall 0.99 at 100k with 96 but 0.96
#: at 200k, so it is sized for millions: bench/ann_engines.py, bench/latency.py)
EXPANSION_SEARCH = 200
#: collections up to this size are searched exactly and get no graph
HNSW_ABOVE = 20_000


class FlatVectors:
    """Unit vectors in one growable float32 matrix; search is one matrix-vector product."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.keys = np.zeros(0, dtype=np.uint64)
        self.matrix = np.zeros((0, dim), dtype=np.float32)
        self._row: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._row)

    def __contains__(self, key: int) -> bool:
        return key in self._row

    def add(self, keys: Sequence[int], vectors: Vector) -> None:
        vectors = normalize(vectors)
        n = len(self._row)
        need = n + sum(1 for k in keys if int(k) not in self._row)
        if need > len(self.keys):  # grow geometrically: appends stay amortised O(1)
            cap = max(need, 2 * len(self.keys), 1024)
            self.keys = np.resize(self.keys, cap)
            grown = np.zeros((cap, self.dim), dtype=np.float32)
            grown[:n] = self.matrix[:n]
            self.matrix = grown
        for key, vec in zip(keys, vectors, strict=True):
            row = self._row.setdefault(int(key), len(self._row))
            self.keys[row] = key
            self.matrix[row] = vec

    def remove(self, keys: Sequence[int]) -> None:
        for key in keys:
            row = self._row.pop(int(key), None)
            if row is None:
                continue
            last = len(self._row)  # the old last row moves into the hole
            if row != last:
                self.keys[row] = self.keys[last]
                self.matrix[row] = self.matrix[last]
                self._row[int(self.keys[row])] = row

    def search(self, vector: Vector, k: int) -> list[tuple[int, float]]:
        n = len(self._row)
        k = min(k, n)
        if k <= 0:
            return []
        scores = self.matrix[:n] @ normalize(np.asarray(vector, dtype=np.float32)[None, :])[0]
        top = np.argpartition(-scores, k - 1)[:k] if k < n else np.arange(n)
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(self.keys[i]), float(scores[i])) for i in top]

    def save(self, path: Path) -> None:
        n = len(self._row)
        with path.open("wb") as f:
            np.savez(f, keys=self.keys[:n], vectors=self.matrix[:n])

    @classmethod
    def load(cls, path: Path, dim: int) -> FlatVectors:
        flat = cls(dim)
        with np.load(path, allow_pickle=False) as z:
            keys, vectors = z["keys"], z["vectors"]
        if vectors.shape[1:] != (dim,) or len(keys) != len(vectors):
            raise ValueError(f"{path} holds vectors of shape {vectors.shape}, not (n, {dim})")
        flat.keys, flat.matrix = keys.astype(np.uint64), vectors.astype(np.float32)
        flat._row = {int(k): i for i, k in enumerate(keys)}
        return flat


class VectorIndex:
    """Dense vectors over chunk ids, persisted next to SQLite with a sidecar:
    ``vectors.flat.npz`` while exact, ``vectors.usearch`` once a graph."""

    def __init__(
        self, directory: Path, dim: int, space: str, *, hnsw_above: int = HNSW_ABOVE
    ) -> None:
        self.path = directory / "vectors.usearch"
        self.flat_path = directory / "vectors.flat.npz"
        self.sidecar = directory / "vectors.json"
        self.dim = dim
        self.space = space  # embedding model name + version: a different space is a rebuild
        self.hnsw_above = hnsw_above
        self.applied_seq = 0
        self._flat: FlatVectors | None = FlatVectors(dim)
        self._graph: Index | None = None
        state = read_sidecar(self.sidecar) or {}
        built_with = state.get("params") or {}
        if state.get("space") != space or state.get("dim") != dim:
            return
        try:
            if state.get("kind") == "flat" and self.flat_path.exists():
                self._flat = FlatVectors.load(self.flat_path, dim)
            elif (
                state.get("kind", "hnsw") == "hnsw"
                and {k: built_with.get(k) for k in PARAMS} == PARAMS
                and self.path.exists()
            ):
                graph = Index.restore(str(self.path), view=False)
                if graph is None:
                    return
                graph.expansion_search = EXPANSION_SEARCH  # type: ignore[misc]
                self._graph, self._flat = graph, None
            else:
                return
        except (RuntimeError, ValueError, OSError, KeyError):
            self.reset()
            return
        if len(self) == int(state.get("count", -1)):
            self.applied_seq = int(state.get("seq", 0))
        else:
            self.reset()

    @property
    def kind(self) -> str:
        return "flat" if self._graph is None else "hnsw"

    def _new_graph(self) -> Index:
        return Index(
            ndim=self.dim,
            metric="cos",
            dtype=PARAMS["dtype"],
            connectivity=PARAMS["connectivity"],
            expansion_add=PARAMS["expansion_add"],
            expansion_search=EXPANSION_SEARCH,
        )

    def __len__(self) -> int:
        return len(self._graph) if self._graph is not None else len(self._flat or ())

    def reset(self) -> None:
        self._flat, self._graph = FlatVectors(self.dim), None
        self.applied_seq = 0

    def upsert(self, ids: Sequence[int], vectors: Vector) -> None:
        if not len(ids):
            return
        if self._graph is None:
            assert self._flat is not None
            self._flat.add(ids, vectors)
            if len(self._flat) > self.hnsw_above:
                self._to_graph()
            return
        keys = np.asarray(ids, dtype=np.uint64)
        present = [int(k) for k in keys if int(k) in self._graph]
        if present:
            self._graph.remove(np.asarray(present, dtype=np.uint64))
        self._graph.add(keys, np.ascontiguousarray(vectors, dtype=np.float32))

    def _to_graph(self) -> None:
        assert self._flat is not None
        n = len(self._flat)
        graph = self._new_graph()
        graph.add(self._flat.keys[:n], self._flat.matrix[:n])
        self._graph, self._flat = graph, None

    def delete(self, ids: Sequence[int]) -> None:
        if self._graph is None:
            assert self._flat is not None
            self._flat.remove(ids)
            return
        present = [i for i in ids if i in self._graph]
        if present:
            self._graph.remove(np.asarray(present, dtype=np.uint64))

    def search(self, vector: Vector, k: int, *, exact: bool = False) -> list[tuple[int, float]]:
        """The ``k`` nearest ids with cosine similarities, best first. A flat index is always
        exact; ``exact`` makes a graph scan all its vectors too."""
        if len(self) == 0 or k <= 0:
            return []
        if self._graph is None:
            assert self._flat is not None
            return self._flat.search(vector, k)
        m = self._graph.search(
            np.asarray(vector, dtype=np.float32), min(k, len(self._graph)), exact=exact
        )
        return [(int(key), 1.0 - float(d)) for key, d in zip(m.keys, m.distances, strict=True)]

    def save(self) -> None:
        """Persist atomically (temp file + rename), then the sidecar with the applied seq."""
        target = self.path if self._graph is not None else self.flat_path
        with atomic_path(target) as tmp:
            if self._graph is not None:
                self._graph.save(str(tmp))
            else:
                assert self._flat is not None
                self._flat.save(tmp)
        write_sidecar(
            self.sidecar,
            {
                "seq": self.applied_seq,
                "space": self.space,
                "dim": self.dim,
                "kind": self.kind,
                "count": len(self),
                "params": PARAMS,
            },
        )
        stale = self.flat_path if self._graph is not None else self.path
        stale.unlink(missing_ok=True)
