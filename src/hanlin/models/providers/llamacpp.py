"""Local GGUF models in-process through llama-cpp-python; the bundled Gemma 3 270M by default.

Gemma 3 270M is a *base* model: it has no chat template and was never tuned to follow turns, so
this provider turns a conversation into one completion prompt (a transcript) and stops the model
where the next turn would begin. The default format, ``transcript``::

    {system text, or a one-line preamble when the conversation has none}

    User: What is the boiling point of water at sea level?
    Assistant: Water boils at 100 °C (212 °F) at sea level.
    User: 一年有几个月？
    Assistant: 一年有十二个月。
    User: {first user turn}
    Assistant: {earlier answer}
    Tool result (get_weather): {tool output}
    User: {last user turn}
    Assistant:

generated text is cut at ``\\nUser:``, ``\\nAssistant:`` or ``\\nTool result``. Why this shape:
on a small test set (capitals, arithmetic, authorship, translation, Chinese questions) the base
model answered best with plain ``User:``/``Assistant:`` labels — the shape of the web dialogue
it was pretrained on — plus two short example exchanges, one English and one Chinese. Without
the examples it answered off-topic or echoed the question; with only an English example it
answered Chinese questions in English; ``Question:``/``Answer:`` made it ramble; Gemma's own
``<start_of_turn>`` tokens (of the instruction-tuned models) gave garbage from the base model.
The prompt ends with ``Assistant:`` without a trailing space, so the answer starts with the
model's usual space-prefixed token; that leading space is stripped from the answer.

Other formats (``qa``, ``chatml`` and ``gemma`` for instruction-tuned GGUFs pointed at by the
user) are picked with the endpoint option ``prompt_format``, or defined there as a table of
:class:`PromptFormat` fields.

Structured output: ``response_format`` json_object / json_schema and prompt-based tool calling
constrain sampling with a llama.cpp grammar (GBNF) built from the JSON schema, so the output
always parses. With tools, the prompt lists them (name, description, argument schema) and the
grammar allows exactly one JSON object: a call ``{"name": <tool>, "arguments": {...}}`` with
arguments per that tool's schema or, with ``tool_choice`` ``auto``, ``{"answer": "..."}``;
``required`` allows only calls, a tool name only that tool, ``none`` offers no tools. The
examples and earlier answers are shown in the same JSON shape. A plain answer streams while its
JSON string is generated; a call goes out whole once its JSON is complete (``call_<n>``,
finish ``tool_calls``). Grammar-constrained sampling is ~2.5x slower per token: llama.cpp
checks the grammar against the whole 262k-token vocabulary at each step.

Endpoint options (``models.endpoints.local.options`` in ``hanlin.toml``): ``model_path`` (the
GGUF for any model name not listed in ``models``), ``models`` (``{name = "/path/x.gguf"}`` or
``{name = {path = ..., prompt_format = ...}}``), ``n_ctx`` (default 8192), ``n_threads``,
``n_batch``, ``prompt_format`` and ``queue_limit`` (default 8). A model entry may add a GGUF
LoRA adapter applied on top of its base (``{path = "base.gguf", lora_path = "adapter.gguf",
lora_scale = 1.0}``). Models deployed by ``hanlin tune deploy`` are read from
``HANLIN_HOME/models/deployed.json`` (entries of the same shape) after the endpoint's own
``models``, so ``local/<name>`` serves them without a config edit.

``n_threads`` defaults to 1 on machines with at most 2 cores,
else cores - 1: llama.cpp's threads wait for each other at every step, so a thread that loses
its core stalls the rest. On a 2-core machine shared with other work (load 1.4-2.2),
``bench/local_model.py`` measured 30.8 tok/s with 1 thread and 27.3 with 2; under heavier load
2 threads fell to 15.7 tok/s where 1 kept 25.6 (and below 1 tok/s in DESIGN.md's measurement).

Each (GGUF, n_ctx, threads) is loaded once per process and shared by every provider instance;
one worker thread per loaded model runs its calls one after another (a llama.cpp context is not
thread-safe). At most ``queue_limit`` calls wait behind the running one; one more is refused at
once with :class:`~hanlin.models.errors.ModelBusyError` (429 with ``Retry-After``; a route fails
over), never left in an open-ended wait. Streams pass tokens from that thread to the event loop
through a queue. A caller that leaves — a stream closed early, a cancelled ``complete()`` (the
server cancels it when the client disconnects) — stops generation at the next token, or takes
its call out of the queue before it starts, and frees the model for the next call.
Greedy decoding (temperature 0) repeats for the same prompt-cache state; llama.cpp's logits
differ slightly between evaluating a prompt in one batch and replaying only its last token from
the cache, so the first call with a prompt may word its answer differently from later ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, ClassVar

from pydantic import ValidationError

from hanlin.errors import ConfigError, NotFoundError
from hanlin.models.base import Endpoint, ModelInfo, Price
from hanlin.models.errors import (
    ModelBusyError,
    ModelTimeoutError,
    UnsupportedFeatureError,
)
from hanlin.models.providers.llamacpp_generate import (
    _generate,
    _plan,
)
from hanlin.models.providers.llamacpp_models import (
    _MODELS,
    LlamaCppOptions,
    _DeployedEntry,
    _LoadedModel,
    _ModelEntry,
    bundled_model_path,
    default_threads,
    deployed_models,
    unload_models,
)
from hanlin.models.providers.llamacpp_prompt import (
    PromptFormat,
)
from hanlin.models.types import (
    ChatOptions,
    ChatResponse,
    Message,
    StreamAccumulator,
    StreamEvent,
)

__all__ = [
    "DEFAULT_MODEL",
    "LlamaCppOptions",
    "LlamaCppProvider",
    "bundled_model_path",
    "default_threads",
    "unload_models",
]

DEFAULT_MODEL = "gemma3-270m"


class LlamaCppProvider:
    """Chat with local GGUF models through llama.cpp; the bundled model is ``local/gemma3-270m``.

    Construction only validates options; a model loads on its first call (or
    :meth:`warm_up`). Embeddings and rerank are not served here (see ``local-embed``).
    """

    supports_streaming: ClassVar[bool] = True
    supports_tools: ClassVar[bool] = True
    supports_embeddings: ClassVar[bool] = False
    supports_rerank: ClassVar[bool] = False
    #: token counts come from the model's own tokenizer
    exact_tokens: ClassVar[bool] = True

    def __init__(self, endpoint: Endpoint, key: str | None = None, **_: Any) -> None:
        self.endpoint = endpoint
        try:
            self.options = LlamaCppOptions(**endpoint.options)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(
                f"invalid option '{where}' for endpoint '{endpoint.name}': {first['msg']}",
                hint="options are model_path, models, n_ctx, n_threads, n_batch, "
                "prompt_format, queue_limit",
            ) from None
        self.n_threads = self.options.n_threads or default_threads()
        self._formats: dict[str, PromptFormat] = {}
        self._loaded: dict[str, _LoadedModel] = {}

    def __repr__(self) -> str:
        return f"LlamaCppProvider(endpoint={self.endpoint.name!r})"

    @staticmethod
    def presets() -> Sequence[Endpoint]:
        try:  # models deployed from tuning runs are listed too (`hanlin models ls`, /v1/models)
            deployed = deployed_models()
        except ConfigError:
            deployed = {}  # a damaged registry must not take the gateway down; calls report it
        return (
            Endpoint(
                "local",
                "llamacpp",
                models=(
                    ModelInfo(
                        DEFAULT_MODEL,
                        context=32768,
                        price=Price(0.0, 0.0),  # free: runs here
                        supports_tools=True,
                        supports_json_schema=True,
                    ),
                    *(
                        ModelInfo(
                            name, context=int(e.get("context") or 8192), price=Price(0.0, 0.0)
                        )
                        for name, e in deployed.items()
                    ),
                ),
                dialect="",
                description="GGUF models in-process via llama.cpp; bundled Gemma 3 270M (base)",
                open_model_list=True,
            ),
        )

    def _label(self, model: str) -> str:
        return f"{self.endpoint.name}/{model}"

    def _model_entry(self, model: str) -> _ModelEntry | str | None:
        """The endpoint's own entry for ``model``, else a deployed one, else None."""
        entry = self.options.models.get(model)
        if entry is not None:
            return entry
        raw = deployed_models().get(model)
        if raw is None:
            return None
        try:
            return _DeployedEntry(**raw)
        except ValidationError as exc:
            raise ConfigError(
                f"the deployed model '{model}' has an invalid entry: {exc.errors()[0]['msg']}",
                hint=f"run `hanlin tune undeploy {model}` and deploy it again",
            ) from None

    def _entry(self, model: str) -> tuple[str | None, str | dict[str, Any]]:
        entry = self._model_entry(model)
        if isinstance(entry, _ModelEntry):
            return entry.path, entry.prompt_format or self.options.prompt_format
        if isinstance(entry, str):
            return entry, self.options.prompt_format
        return self.options.model_path, self.options.prompt_format

    def lora(self, model: str) -> tuple[Path | None, float]:
        """The GGUF LoRA adapter applied to ``model`` and its scale; ConfigError if missing."""
        entry = self._model_entry(model)
        if not isinstance(entry, _ModelEntry) or not entry.lora_path:
            return None, 1.0
        resolved = Path(entry.lora_path).expanduser()
        if not resolved.is_file():
            raise ConfigError(
                f"the LoRA adapter for {self._label(model)} does not exist: {resolved}",
                hint="export it again (`hanlin tune export-gguf RUN`) or fix lora_path",
            )
        return resolved, entry.lora_scale

    def model_path(self, model: str) -> Path:
        """The GGUF file that serves ``model``; assembles the bundled one on first use.

        Raises NotFoundError for a name with no file configured, ConfigError for a missing file.
        """
        path, _ = self._entry(model)
        if path is None:
            if model == DEFAULT_MODEL:
                return bundled_model_path()
            names = ", ".join(sorted({DEFAULT_MODEL, *self.options.models, *deployed_models()}))
            raise NotFoundError(
                f"no local model '{model}' on endpoint '{self.endpoint.name}' (known: {names})",
                hint=f"point it at a GGUF file: models.endpoints.{self.endpoint.name}.options"
                f'.models = {{ "{model}" = "/path/to/model.gguf" }} in hanlin.toml',
            )
        resolved = Path(path).expanduser()
        if not resolved.is_file():
            raise ConfigError(
                f"the GGUF file for {self._label(model)} does not exist: {resolved}",
                hint="fix the path in the endpoint options (model_path or models), or download "
                "the model there",
            )
        return resolved

    def prompt_format(self, model: str) -> PromptFormat:
        fmt = self._formats.get(model)
        if fmt is None:
            fmt = self._formats[model] = PromptFormat.from_option(self._entry(model)[1])
        return fmt

    def warm_up(self, model: str = DEFAULT_MODEL) -> None:
        """Load ``model`` now instead of on its first call (blocking)."""
        self._model(model)

    def _model(self, model: str) -> _LoadedModel:
        loaded = self._loaded.get(model)
        if loaded is None or loaded.closed:  # closed: unload_models() ran since
            path = self.model_path(model)
            lora_path, lora_scale = self.lora(model)
            loaded = _MODELS.get(
                path,
                self.options.n_ctx,
                self.n_threads,
                self.options.n_batch,
                lora_path,
                lora_scale,
            )
            self._loaded[model] = loaded
            loaded.labels.add(self._label(model))
            loaded.queue_limit = self.options.queue_limit
        return loaded

    async def _amodel(self, model: str) -> _LoadedModel:
        loaded = self._loaded.get(model)
        if loaded is not None and not loaded.closed:
            return loaded
        return await asyncio.to_thread(self._model, model)

    def _submit(
        self, loaded: _LoadedModel, label: str, fn: Callable[..., None], *args: Any
    ) -> Future[None]:
        """Queue a call on the model's worker; ModelBusyError when its queue is full."""
        future = loaded.submit(fn, *args, limit=self.options.queue_limit)
        if future is None:
            raise ModelBusyError(
                f"{label} is busy: {self.options.queue_limit} calls are already waiting for it",
                hint="retry after the Retry-After seconds, or raise queue_limit in "
                f"models.endpoints.{self.endpoint.name}.options",
                provider=label,
                status=429,
                retry_after=loaded.retry_after(),
                params={"queue_limit": self.options.queue_limit},
            )
        return future

    def count_tokens(self, model: str, text: str) -> int:
        """Exact number of tokens ``text`` is for ``model``'s tokenizer (no BOS token)."""
        llm = self._model(model).llm
        return len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    async def complete(
        self, model: str, messages: Sequence[Message], options: ChatOptions
    ) -> ChatResponse:
        started = time.perf_counter()
        label = self._label(model)
        plan = _plan(label, self.prompt_format(model), messages, options)
        loaded = await self._amodel(model)
        events: list[StreamEvent] = []
        cancel = threading.Event()
        # a cancelled wait (the client left) cancels a queued call, or stops a running one
        # through ``cancel`` below
        future = asyncio.wrap_future(
            self._submit(loaded, label, _generate, plan, cancel, events.append)
        )
        try:
            await asyncio.wait_for(future, options.timeout)
        except TimeoutError as exc:
            raise ModelTimeoutError(
                f"{label} did not answer within {options.timeout} s",
                hint="raise the timeout or lower max_tokens",
                provider=label,
            ) from exc
        finally:
            cancel.set()  # stops the worker at its next token if we are leaving early
        acc = StreamAccumulator()
        for event in events:
            acc.add(event)
        resp = acc.response(model)
        resp.served_by = label
        resp.latency_ms = (time.perf_counter() - started) * 1000
        return resp

    async def stream(
        self, model: str, messages: Sequence[Message], options: ChatOptions
    ) -> AsyncIterator[StreamEvent]:
        label = self._label(model)
        plan = _plan(label, self.prompt_format(model), messages, options)
        loaded = await self._amodel(model)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[StreamEvent | BaseException | None] = asyncio.Queue()
        cancel = threading.Event()

        def put(item: StreamEvent | BaseException | None) -> None:
            if cancel.is_set():
                return
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the event loop is gone: nobody is listening
                cancel.set()

        def job(model_: _LoadedModel) -> None:
            try:
                _generate(model_, plan, cancel, put)
            except BaseException as exc:
                put(exc)
            finally:
                put(None)

        future = self._submit(loaded, label, job)
        try:
            first = True
            while True:
                if first and options.timeout:
                    try:
                        item = await asyncio.wait_for(queue.get(), options.timeout)
                    except TimeoutError as exc:
                        raise ModelTimeoutError(
                            f"{label} sent no token within {options.timeout} s",
                            hint="raise the timeout or lower max_tokens",
                            provider=label,
                        ) from exc
                else:
                    item = await queue.get()
                first = False
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancel.set()
            if not future.cancel():
                # Running: it stops at its next token. Wait for that, so the model is free
                # (and its lock released) once this generator has closed. (job() catches its
                # own errors; a cancellation of this task still propagates.)
                with contextlib.suppress(Exception):
                    await asyncio.wrap_future(future)

    async def embed(self, model: str, texts: Sequence[str]) -> list[list[float]]:
        raise UnsupportedFeatureError(
            f"{self._label(model)} does not serve embeddings",
            hint="use local-embed/fast-use or local-embed/e5-small",
            provider=self._label(model),
        )

    async def rerank(
        self, model: str, query: str, documents: Sequence[str], top_n: int | None = None
    ) -> list[tuple[int, float]]:
        raise UnsupportedFeatureError(
            f"{self._label(model)} does not rerank",
            hint="configure a rerank endpoint (e.g. siliconflow/BAAI/bge-reranker-v2-m3)",
            provider=self._label(model),
        )

    async def aclose(self) -> None:
        """Forget this instance's models; they stay loaded for others (see unload_models)."""
        self._loaded.clear()
