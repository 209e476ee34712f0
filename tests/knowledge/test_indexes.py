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
    index = VectorIndex(tmp_path, 8, "model@1")
    index.upsert(list(range(1, 51)), _vectors(50))
    index.applied_seq = 50
    index.save()
    again = VectorIndex(tmp_path, 8, "model@1")
    assert len(again) == 50 and again.applied_seq == 50
    assert again.search(_vectors(50)[7], 1)[0][0] == 8
    assert len(VectorIndex(tmp_path, 8, "model@2")) == 0  # another vector space
    state = json.loads((tmp_path / "vectors.json").read_text())
    state["params"] = {**PARAMS, "expansion_add": PARAMS["expansion_add"] // 2}
    (tmp_path / "vectors.json").write_text(json.dumps(state))
    stale = VectorIndex(tmp_path, 8, "model@1")  # built with other HNSW settings
    assert len(stale) == 0 and stale.applied_seq == 0


def test_keyword_index_drops_an_index_from_another_analyzer(tmp_path: Path) -> None:
    index = KeywordIndex(tmp_path, "analyzer/1")
    index.upsert([(1, "alpha beta"), (2, "beta gamma")])
    index.applied_seq = 2
    index.commit()
    assert [i for i, _ in KeywordIndex(tmp_path, "analyzer/1").search(["gamma"], 5)] == [2]
    other = KeywordIndex(tmp_path, "analyzer/2")
    assert other.applied_seq == 0 and other.search(["gamma"], 5) == []
