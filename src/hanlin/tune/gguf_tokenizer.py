"""The tokenizer inside a GGUF file, read by llama.cpp without the weights (about a second), so
``tune data check`` counts tokens without converting the model (:mod:`hanlin.tune.gguf_base`,
minutes and a 1 GB float32 copy for the bundled model).

:class:`GGUFTokenizer` answers the calls the tune code makes on a Hugging Face tokenizer. It
splits text as llama.cpp does when it serves the model; the conversion for training checks that
transformers splits it the same way (:func:`hanlin.tune.gguf_base.tokenizer_mismatches`).
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hanlin.errors import InvalidInputError, MissingDependencyError

__all__ = ["GGUFTokenizer", "quiet_llama"]


@functools.cache
def _silent_callback() -> Any:
    """A llama.cpp log callback that drops every line (kept alive here: llama.cpp holds a
    pointer to it)."""
    import llama_cpp

    @llama_cpp.llama_log_callback
    def drop(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        return None

    return drop


@contextmanager
def quiet_llama() -> Iterator[None]:
    """Keep llama.cpp's load-time log off stderr. ``verbose=False`` still lets its error-level
    lines through, and a vocab-only load always logs one ("n_ctx_seq (512) > n_ctx_train (0)").
    llama-cpp-python's own log callback is put back afterwards."""
    import llama_cpp

    llama_cpp.llama_log_set(_silent_callback(), ctypes.c_void_p(0))
    try:
        yield
    finally:
        own = getattr(getattr(llama_cpp, "_logger", None), "llama_log_callback", None)
        if own is not None:
            llama_cpp.llama_log_set(own, ctypes.c_void_p(0))


class GGUFTokenizer:
    """A GGUF file's tokenizer with the Hugging Face calls the tune code uses:
    ``tok(text, add_special_tokens=...)["input_ids"]``, ``bos_token_id``, ``eos_token_id``,
    ``chat_template`` and ``apply_chat_template``. ``context_length`` is the model's trained
    context, from the GGUF metadata (None when it has none).

    Raises :class:`MissingDependencyError` without llama-cpp-python and
    :class:`InvalidInputError` when llama.cpp cannot read the file.
    """

    def __init__(self, gguf_path: Path) -> None:
        try:
            import llama_cpp
        except ImportError as exc:
            raise MissingDependencyError(
                "llama-cpp-python", "local", "counting tokens of a GGUF model"
            ) from exc
        try:
            with quiet_llama():
                self._llm = llama_cpp.Llama(str(gguf_path), vocab_only=True, verbose=False)
        except (ValueError, RuntimeError, OSError) as exc:
            raise InvalidInputError(
                f"llama.cpp cannot read the tokenizer of {gguf_path}: {exc}",
                hint="give a .gguf model file (`hanlin tune data check FILE --model bundled`)",
            ) from exc
        meta: dict[str, str] = dict(self._llm.metadata)
        self.bos_token_id = _int(meta.get("tokenizer.ggml.bos_token_id"))
        self.eos_token_id = _int(meta.get("tokenizer.ggml.eos_token_id"))
        self.chat_template: str | None = meta.get("tokenizer.chat_template")
        arch = meta.get("general.architecture", "")
        self.context_length = _int(meta.get(f"{arch}.context_length"))

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        """``{"input_ids": [...]}``; with ``add_special_tokens`` BOS goes first when the model
        adds one. Special-token text (``<start_of_turn>``) becomes its one token, as in
        transformers."""
        ids = self._llm.tokenize(text.encode("utf-8"), add_bos=add_special_tokens, special=True)
        return {"input_ids": list(ids)}

    def _piece(self, token: int | None) -> str:
        if token is None:
            return ""
        return self._llm.detokenize([token], special=True).decode("utf-8", errors="replace")

    def apply_chat_template(
        self,
        messages: Sequence[dict[str, str]],
        tokenize: bool = False,
        add_generation_prompt: bool = False,
    ) -> str:
        """The conversation rendered with the GGUF's Jinja chat template (text only)."""
        if not self.chat_template:
            raise InvalidInputError(
                "this GGUF model has no chat template",
                hint="use --template transcript (the format the bundled model is served with)",
            )
        if tokenize:
            raise InvalidInputError("only text rendering is supported", hint="tokenize=False")
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        formatter = Jinja2ChatFormatter(
            self.chat_template,
            eos_token=self._piece(self.eos_token_id),
            bos_token=self._piece(self.bos_token_id),
            add_generation_prompt=add_generation_prompt,
        )
        return str(formatter(messages=list(messages)).prompt)  # type: ignore[arg-type]

    def close(self) -> None:
        self._llm.close()


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
