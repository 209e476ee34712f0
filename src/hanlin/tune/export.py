"""Export of a tuned model: LoRA merged into full weights, and LoRA adapters as GGUF files.

The GGUF adapter is what llama.cpp's ``convert_lora_to_gguf.py`` writes, so llama.cpp loads it
next to the (quantized) base GGUF: ``general.type = adapter``, ``adapter.type = lora``,
``adapter.lora.alpha``, and per adapted weight two tensors named after the base GGUF's tensor
(``blk.0.attn_q.weight.lora_a`` / ``.lora_b``). PEFT stores ``lora_A`` as (r, in) and ``lora_B``
as (out, r); GGUF lists dimensions innermost first, so written unchanged they are the
``[in, r]`` and ``[r, out]`` that llama.cpp checks against the base ``[in, out]`` — no transpose.
llama.cpp scales the update by ``alpha / r``, PEFT's default; for rsLoRA (``alpha / sqrt(r)``)
the alpha written is ``alpha * sqrt(r)`` so the product is the same. For ``llama`` bases the
q/k rows of ``lora_b`` get the permutation convert_hf_to_gguf.py gives those weights; other
architectures (gemma3, qwen2, …) are written as they are.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hanlin.errors import InvalidInputError, MissingDependencyError, NotFoundError
from hanlin.fileio import atomic_dir, atomic_path

__all__ = [
    "GgufInfo",
    "adapter_tensors_for_gguf",
    "export_gguf_adapter",
    "gguf_arch",
    "merge_adapter",
]

_PREFIXES = ("base_model.model.",)


def _need_adapter(adapter_dir: Path) -> None:
    if not (adapter_dir / "adapter_config.json").is_file():
        raise NotFoundError(
            f"no LoRA adapter in {adapter_dir} (adapter_config.json is missing)",
            hint="merge and GGUF export need a LoRA run (lora: true) that has finished",
        )


# --- merge ----------------------------------------------------------------------------------


def merge_adapter(adapter_dir: Path, base_dir: Path, out_dir: Path) -> Path:
    """Merge the LoRA adapter into the base weights and save the full model to ``out_dir``.

    Writes safetensors, config and the tokenizer (from the adapter folder when it has one,
    else from the base); atomic. Returns ``out_dir``.
    """
    adapter_dir, out_dir = Path(adapter_dir), Path(out_dir)
    _need_adapter(adapter_dir)
    try:
        import torch
        from peft import PeftModel
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise MissingDependencyError("peft", "tune", "merging a LoRA adapter") from exc
    base = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    tok_src = adapter_dir if (adapter_dir / "tokenizer_config.json").is_file() else base_dir
    tokenizer = AutoTokenizer.from_pretrained(str(tok_src))
    with atomic_dir(out_dir) as tmp:
        merged.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    return out_dir


# --- GGUF adapter ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GgufInfo:
    """What the export needs from a base GGUF: architecture, sizes and tensor shapes."""

    arch: str
    blocks: int
    n_head: int
    n_head_kv: int
    #: the context length the model was trained for (0 when the file does not say)
    context: int
    #: tensor name -> shape in GGUF order (innermost dimension first)
    shapes: dict[str, tuple[int, ...]]


def gguf_arch(gguf_path: Path) -> GgufInfo:
    """Read architecture, block and head counts and tensor shapes of a GGUF model file."""
    import gguf

    try:
        reader = gguf.GGUFReader(str(gguf_path))
        arch_field = reader.get_field(gguf.Keys.General.ARCHITECTURE)
        if arch_field is None:
            raise ValueError("it has no general.architecture")
        arch = str(arch_field.contents())
    except (OSError, ValueError) as exc:
        raise InvalidInputError(
            f"cannot read the GGUF file {gguf_path}: {exc}",
            hint="give the base model's .gguf file",
        ) from exc

    def number(key: str) -> int:
        field = reader.get_field(key.format(arch=arch))
        value = field.contents() if field is not None else 0
        return int(value[0] if isinstance(value, list) else value)

    heads = number(gguf.Keys.Attention.HEAD_COUNT)
    return GgufInfo(
        arch=arch,
        blocks=number(gguf.Keys.LLM.BLOCK_COUNT),
        n_head=heads,
        n_head_kv=number(gguf.Keys.Attention.HEAD_COUNT_KV) or heads,
        context=number(gguf.Keys.LLM.CONTEXT_LENGTH),
        shapes={t.name: tuple(int(d) for d in t.shape) for t in reader.tensors},
    )


def _llama_permute(weights: Any, n_head: int) -> Any:
    """The row permutation convert_hf_to_gguf.py applies to llama's q/k projections."""
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def _gguf_name(hf_name: str, names: Any) -> str | None:
    """The base GGUF tensor name of an HF weight name, e.g. ``blk.0.attn_q.weight``."""
    candidates = [hf_name]
    if ".language_model." in hf_name:  # multimodal wrappers around the text model
        candidates.append(hf_name.replace(".language_model.", ".", 1))
    for name in candidates:
        found = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if found is not None:
            return str(found)
    return None


def adapter_tensors_for_gguf(
    adapter_dir: Path, base_gguf: Path
) -> tuple[str, float, dict[str, Any]]:
    """The GGUF architecture, alpha and ``{gguf_name: float32 numpy array}`` of an adapter.

    Every adapted weight is checked against the base GGUF's tensor of the same name, so an
    adapter trained on another model is refused here rather than by llama.cpp at load time.
    Raises InvalidInputError for adapters llama.cpp cannot apply (embedding LoRA, DoRA,
    per-module alphas, a mismatching base).
    """
    import gguf
    from safetensors.numpy import load_file

    adapter_dir = Path(adapter_dir)
    _need_adapter(adapter_dir)
    cfg = json.loads((adapter_dir / "adapter_config.json").read_text("utf-8"))
    hint = "train with plain LoRA on linear layers (lora_targets: all-linear)"
    if cfg.get("use_dora"):
        raise InvalidInputError("llama.cpp cannot apply DoRA adapters", hint=hint)
    if cfg.get("alpha_pattern"):
        raise InvalidInputError(
            "the adapter uses per-module alphas (alpha_pattern); a GGUF adapter has one alpha",
            hint=hint,
        )
    weights_file = adapter_dir / "adapter_model.safetensors"
    if not weights_file.is_file():
        raise NotFoundError(
            f"no adapter_model.safetensors in {adapter_dir}",
            hint="save the adapter with safetensors (PEFT's default)",
        )
    info = gguf_arch(base_gguf)
    shapes = info.shapes
    arch = next((a for a, n in gguf.MODEL_ARCH_NAMES.items() if n == info.arch), None)
    if arch is None:
        raise InvalidInputError(f"the gguf package does not know the architecture {info.arch}")
    names = gguf.get_tensor_name_map(arch, info.blocks)
    alpha = float(cfg.get("lora_alpha", cfg.get("r", 8)))
    if cfg.get("use_rslora"):
        alpha *= math.sqrt(float(cfg.get("r", 8)))
    tensors: dict[str, Any] = {}
    for key, value in sorted(load_file(str(weights_file)).items()):
        name = key
        for prefix in _PREFIXES:
            name = name.removeprefix(prefix)
        if ".lora_embedding_" in name or name.endswith(("lora_magnitude_vector", ".bias")):
            raise InvalidInputError(f"llama.cpp cannot apply this adapter tensor: {key}", hint=hint)
        if name.endswith(".lora_A.weight"):
            base_name, suffix = name.removesuffix(".lora_A.weight") + ".weight", ".lora_a"
        elif name.endswith(".lora_B.weight"):
            base_name, suffix = name.removesuffix(".lora_B.weight") + ".weight", ".lora_b"
        else:
            continue  # e.g. modules_to_save copies: not part of a GGUF LoRA
        target = _gguf_name(base_name, names)
        if target is None or target not in shapes:
            raise InvalidInputError(
                f"adapter weight {base_name} has no tensor in the base GGUF {base_gguf.name}",
                hint="export against the GGUF the run was trained from (run.json base.gguf)",
            )
        value = value.astype("float32")
        if info.arch == "llama" and suffix == ".lora_b":  # rows of W = B @ A are rows of B
            if target.endswith("attn_q.weight"):
                value = _llama_permute(value, info.n_head)
            elif target.endswith("attn_k.weight"):
                value = _llama_permute(value, info.n_head_kv)
        tensors[target + suffix] = value
    if not tensors:
        raise InvalidInputError(f"the adapter in {adapter_dir} has no LoRA weights")
    for name in {n.rsplit(".", 1)[0] for n in tensors}:
        a, b, base = tensors[name + ".lora_a"], tensors[name + ".lora_b"], shapes[name]
        # numpy (r, in) / (out, r); GGUF base shape [in, out] (innermost first)
        if a.shape[1] != base[0] or b.shape[0] != base[1] or a.shape[0] != b.shape[1]:
            raise InvalidInputError(
                f"adapter shapes for {name} ({a.shape}, {b.shape}) do not fit the base "
                f"tensor {list(base)}",
                hint="export against the GGUF the run was trained from",
            )
    return info.arch, alpha, tensors


def export_gguf_adapter(adapter_dir: Path, base_gguf: Path, out_path: Path) -> Path:
    """Write the PEFT LoRA in ``adapter_dir`` as a GGUF LoRA adapter for ``base_gguf``."""
    import gguf

    arch, alpha, tensors = adapter_tensors_for_gguf(adapter_dir, base_gguf)
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:
        writer = gguf.GGUFWriter(str(tmp), arch)
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        writer.add_name(Path(adapter_dir).parent.name or "adapter")
        for name, array in tensors.items():
            writer.add_tensor(name, array)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return out_path
