"""An embedding worker process: ``python -m hanlin.models.embeddings.worker MODEL``.

Reads length-prefixed pickled ``list[str]`` batches on stdin and answers each with a
length-prefixed float32 array (``.npy`` bytes) on stdout. A plain subprocess rather than
multiprocessing, so it works from any caller's script (no ``if __name__ == "__main__"`` needed).
"""

from __future__ import annotations

import io
import pickle
import sys

import numpy as np

from hanlin.frames import read_frame, write_frame
from hanlin.models.embeddings.base import get_embedder


def main(name: str) -> None:
    model = get_embedder(name)
    model.embed_documents(["warm up"])  # load the weights now, while the parent is still parsing
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while (frame := read_frame(stdin)) is not None:
        texts = pickle.loads(frame)
        buf = io.BytesIO()
        np.save(buf, model.embed_documents(texts), allow_pickle=False)
        write_frame(stdout, buf.getvalue())


if __name__ == "__main__":
    main(sys.argv[1])
