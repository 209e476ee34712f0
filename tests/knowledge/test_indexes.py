"""The derived indexes notice when they were built differently and start over."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hanlin.knowledge.indexes.keyword import KeywordIndex
from hanlin.knowledge.indexes.vectors import PARAMS, VectorIndex


def _vectors(n: int) -> np.ndarray:
    v = np.random.default_rng(0).standard_normal((n, 8)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_vector_index_reloads_only_what_matches(tmp_path: Path) -> None:
    index = VectorIndex(tmp_path, 8, "model@1", hnsw_above=10)
    index.upsert(list(range(1, 51)), _vectors(50))
    assert index.kind == "hnsw"
    index.applied_seq = 50
    index.save()
    again = VectorIndex(tmp_path, 8, "model@1", hnsw_above=10)
    assert len(again) == 50 and again.applied_seq == 50 and again.kind == "hnsw"
    assert again.search(_vectors(50)[7], 1)[0][0] == 8
    assert len(VectorIndex(tmp_path, 8, "model@2")) == 0  # another vector space
    state = json.loads((tmp_path / "vectors.json").read_text())
    state["params"] = {**PARAMS, "expansion_add": PARAMS["expansion_add"] // 2}
    (tmp_path / "vectors.json").write_text(json.dumps(state))
    stale = VectorIndex(tmp_path, 8, "model@1")  # built with other HNSW settings
    assert len(stale) == 0 and stale.applied_seq == 0


def _exact_top(vectors: np.ndarray, ids: list[int], query: np.ndarray, k: int) -> list[int]:
    order = np.argsort(-(vectors @ query), kind="stable")[:k]
    return [ids[i] for i in order]


def test_small_index_is_exact_and_becomes_a_graph_past_the_threshold(tmp_path: Path) -> None:
    vecs = _vectors(300)
    index = VectorIndex(tmp_path, 8, "model@1", hnsw_above=200)
    index.upsert(list(range(1, 151)), vecs[:150])
    index.upsert([5, 6], vecs[200:202])  # re-embedded chunks replace their rows
    index.delete([7, 8, 9999])  # unknown ids are ignored
    assert index.kind == "flat" and len(index) == 148
    live = [i for i in range(1, 151) if i not in (7, 8)]
    replaced = {5: vecs[200], 6: vecs[201]}
    live_vecs = np.vstack([replaced.get(i, vecs[i - 1]) for i in live])
    for q in _vectors(20):
        hits = index.search(q, 10)
        assert [h[0] for h in hits] == _exact_top(live_vecs, live, q, 10)
        assert abs(hits[0][1] - float(live_vecs[live.index(hits[0][0])] @ q)) < 1e-5
    index.applied_seq = 3
    index.save()
    assert (tmp_path / "vectors.flat.npz").exists() and not (tmp_path / "vectors.usearch").exists()
    again = VectorIndex(tmp_path, 8, "model@1", hnsw_above=200)
    assert again.kind == "flat" and len(again) == 148 and again.applied_seq == 3
    assert again.search(vecs[200], 1)[0][0] == 5
    again.upsert(list(range(151, 301)), vecs[150:300])  # 298 > 200: one graph from all of them
    assert again.kind == "hnsw" and len(again) == 298
    assert again.search(vecs[299], 1)[0][0] == 300 and again.search(vecs[200], 1)[0][0] == 5
    again.save()
    assert (tmp_path / "vectors.usearch").exists() and not (tmp_path / "vectors.flat.npz").exists()
    assert VectorIndex(tmp_path, 8, "model@1", hnsw_above=200).kind == "hnsw"


def test_damaged_flat_index_starts_over(tmp_path: Path) -> None:
    index = VectorIndex(tmp_path, 8, "model@1")
    index.upsert([1, 2, 3], _vectors(3))
    index.applied_seq = 3
    index.save()
    (tmp_path / "vectors.flat.npz").write_bytes(b"not a numpy file")
    again = VectorIndex(tmp_path, 8, "model@1")  # the store then rebuilds it from SQLite
    assert len(again) == 0 and again.applied_seq == 0


def test_keyword_index_drops_an_index_from_another_analyzer(tmp_path: Path) -> None:
    index = KeywordIndex(tmp_path, "analyzer/1")
    index.upsert([(1, "alpha beta"), (2, "beta gamma")])
    index.applied_seq = 2
    index.commit()
    assert [i for i, _ in KeywordIndex(tmp_path, "analyzer/1").search(["gamma"], 5)] == [2]
    other = KeywordIndex(tmp_path, "analyzer/2")
    assert other.applied_seq == 0 and other.search(["gamma"], 5) == []
