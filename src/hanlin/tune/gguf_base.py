"""A GGUF file as a Hugging Face model directory, so it can be fine-tuned.

``transformers`` reads GGUF files (``from_pretrained(dir, gguf_file=...)``) by dequantizing every
tensor, which takes about a minute for the bundled Gemma 3 270M (its tokenizer alone ~35 s on a
busy machine). The result is saved once under ``HANLIN_HOME/tune/base/<hash>/`` as safetensors
plus config and tokenizer; later runs load that directory like any local model. The saved config
has the GGUF quantizer flag removed: a model loaded from GGUF carries
``quantization_config = {"quant_method": "gguf"}``, which makes ``save_pretrained`` refuse and
would make the saved copy look quantized when loaded again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from hanlin.errors import InvalidInputError, MissingDependencyError
from hanlin.fileio import atomic_dir
from hanlin.paths import hanlin_home

__all__ = ["base_cache_root", "gguf_key", "hf_dir_for_gguf", "tokenizer_mismatches"]

#: text for the tokenizer round-trip check: Chinese, English, digits, punctuation, spaces
ROUNDTRIP_SAMPLE = (
    "翰林院的学士们读书并回答问题。The quick brown fox jumps over 13 lazy dogs!\n"
    "  问：一年有几个月？答：十二个月。 Hello,   world…"
)
_DONE = "hanlin-gguf-base.json"
#: bumped when the saved folder's layout changes, so older conversions are redone
_FORMAT = "2"


def base_cache_root(home: Path | None = None) -> Path:
    """``HANLIN_HOME/tune/base``: one folder per converted GGUF file."""
    return (home or hanlin_home()) / "tune" / "base"


def gguf_key(gguf_path: Path) -> str:
    """A short content key for a GGUF file: SHA-256 of its size, first and last MiB.

    Reading the whole file would cost seconds per run for large models; GGUF files start with
    their metadata and tensor index, so a change anywhere that matters changes these bytes.
    """
    size = gguf_path.stat().st_size
    h = hashlib.sha256(f"{_FORMAT}:{size}".encode())
    with gguf_path.open("rb") as fh:
        h.update(fh.read(1 << 20))
        fh.seek(max(0, size - (1 << 20)))
        h.update(fh.read(1 << 20))
    return h.hexdigest()[:16]


def hf_dir_for_gguf(gguf_path: Path, *, home: Path | None = None, check: bool = True) -> Path:
    """A Hugging Face model directory (safetensors, config, tokenizer) for ``gguf_path``.

    Converted once (dequantized to float32) and cached under ``HANLIN_HOME/tune/base/<key>/``;
    the write goes to a temporary folder renamed into place, so an interrupted conversion leaves
    nothing half-written. With ``check`` the tokenizer is compared with llama.cpp's on a
    Chinese + English sample before the copy is kept (InvalidInputError if they differ).
    Raises InvalidInputError when the file is missing or not a GGUF model transformers reads.
    """
    gguf_path = Path(gguf_path).expanduser().resolve()
    if not gguf_path.is_file():
        raise InvalidInputError(
            f"no GGUF file at {gguf_path}", hint="give the path of a .gguf model file"
        )
    root = base_cache_root(home)
    target = root / gguf_key(gguf_path)
    if (target / _DONE).is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock

    with FileLock(str(target) + ".lock"):
        if (target / _DONE).is_file():
            return target
        # a stale folder without its marker (an old failed attempt) is replaced
        with atomic_dir(target) as tmp:
            _convert(gguf_path, tmp, check=check)
    return target


def _convert(gguf_path: Path, out: Path, *, check: bool) -> None:
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise MissingDependencyError("transformers", "tune", "fine-tuning") from exc
    from rich.console import Console

    console = Console(stderr=True)
    where, name = str(gguf_path.parent), gguf_path.name
    with console.status(f"reading the tokenizer of {name} (once; ~30 s)…"):
        try:
            tokenizer = AutoTokenizer.from_pretrained(where, gguf_file=name)
        except (ValueError, KeyError, RuntimeError) as exc:
            raise InvalidInputError(
                f"transformers cannot read the GGUF file {gguf_path}: {exc}",
                hint="use a GGUF of an architecture transformers supports (gemma3, llama, "
                "qwen2, mistral, …) or a Hugging Face model directory",
            ) from exc
    if check:
        bad = tokenizer_mismatches(tokenizer, gguf_path)
        if bad:
            raise InvalidInputError(
                f"the tokenizer transformers read from {name} disagrees with llama.cpp: {bad}",
                hint="fine-tune from the original Hugging Face model directory instead",
            )
    console.print(f"dequantizing {name} to float32 (once)…")
    model = AutoModelForCausalLM.from_pretrained(where, gguf_file=name, dtype=torch.float32)
    _clear_quantizer(model)
    with console.status(f"saving the converted model to {out.parent}…"):
        out.mkdir(parents=True, exist_ok=True)  # atomic_dir made it
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        _clear_saved_quantizer(out / "config.json")
        stat = gguf_path.stat()
        (out / _DONE).write_text(
            json.dumps({"gguf": str(gguf_path), "size": stat.st_size}, ensure_ascii=False)
        )


def _clear_quantizer(model: Any) -> None:
    """Make a model loaded from GGUF look like a normal (unquantized) one: it already is."""
    model.hf_quantizer = None
    for attr in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(model.config, attr):
            delattr(model.config, attr)


def _clear_saved_quantizer(config_json: Path) -> None:
    data = json.loads(config_json.read_text("utf-8"))
    if data.pop("quantization_config", None) is not None:
        config_json.write_text(json.dumps(data, indent=2, ensure_ascii=False), "utf-8")


def tokenizer_mismatches(tokenizer: Any, gguf_path: Path, text: str = ROUNDTRIP_SAMPLE) -> str:
    """Empty when ``tokenizer`` splits ``text`` exactly as llama.cpp does, else what differs.

    Also checks that decoding gives the text back. Skipped (empty) when llama-cpp-python is not
    installed.
    """
    try:
        import llama_cpp
    except ImportError:
        return ""
    ours = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    if tokenizer.decode(ours) != text:
        return f"decode(encode(text)) != text: {tokenizer.decode(ours)!r}"
    from hanlin.tune.gguf_tokenizer import quiet_llama

    with quiet_llama():
        llm = llama_cpp.Llama(str(gguf_path), vocab_only=True, verbose=False)
    try:
        theirs = list(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))
    finally:
        llm.close()
    if ours == theirs:
        return ""
    at = next((i for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b), None)
    at = min(len(ours), len(theirs)) if at is None else at
    return (
        f"{len(ours)} vs {len(theirs)} tokens, first difference at token {at} "
        f"(transformers {ours[at : at + 3]}, llama.cpp {theirs[at : at + 3]})"
    )
