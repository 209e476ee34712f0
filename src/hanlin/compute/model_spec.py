"""Building a :class:`ModelSpec` from hand-given hyperparameters, a Hugging Face ``config.json``,
or a GGUF file's metadata — and resolving what a user typed (a name, a path) to one of those."""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hanlin.compute.architecture import ModelSpec
from hanlin.compute.gguf_meta import ArrayLength, TensorInfo, read_gguf_header
from hanlin.errors import InvalidInputError, NotFoundError

# Per-architecture facts a config.json leaves implicit (transformers hard-codes them per class).
_FAMILY: dict[str, dict[str, Any]] = {
    "llama": {},
    "mistral": {},
    "mixtral": {},
    "qwen2": {"attn_bias": "qkv"},
    "qwen2_moe": {"attn_bias": "qkv"},
    "qwen3": {"qk_norm": True},
    "qwen3_moe": {"qk_norm": True},
    "deepseek_v2": {},
    "deepseek_v3": {},
    "phi3": {},
    "gemma": {"tie_embeddings": True},
    "gemma2": {"tie_embeddings": True, "norms_per_layer": 4},
    "gemma3": {"tie_embeddings": True, "norms_per_layer": 4, "qk_norm": True},
    "gemma3_text": {"tie_embeddings": True, "norms_per_layer": 4, "qk_norm": True},
    "gpt2": {
        "tie_embeddings": True,
        "gated_ffn": False,
        "norm": "layernorm",
        "attn_bias": "all",
        "mlp_bias": True,
        "position": "learned",
    },
    "opt": {
        "tie_embeddings": True,
        "gated_ffn": False,
        "norm": "layernorm",
        "attn_bias": "all",
        "mlp_bias": True,
        "position": "learned",
    },
}

_FIRST_KEY: dict[str, tuple[str, ...]] = {
    "n_layers": ("num_hidden_layers", "n_layer", "num_layers"),
    "hidden_size": ("hidden_size", "n_embd", "d_model"),
    "n_heads": ("num_attention_heads", "n_head"),
    "vocab_size": ("vocab_size",),
}


def from_params(**params: Any) -> ModelSpec:
    """A spec from keyword hyperparameters; bad or missing ones raise :class:`InvalidInputError`."""
    params.setdefault("name", "custom")
    try:
        return ModelSpec(**params)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'model'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidInputError(
            f"invalid model description ({problems})",
            hint="give n_layers, hidden_size, n_heads, ffn_size and vocab_size at least",
        ) from exc


def _get(cfg: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for k in keys:
        if cfg.get(k) is not None:
            return cfg[k]
    return None


def from_hf_config(config: dict[str, Any] | str | Path, *, name: str | None = None) -> ModelSpec:
    """A spec from a Hugging Face ``config.json`` (dict, file, or folder holding one).

    Understands llama, mistral, mixtral, qwen2(-moe), qwen3(-moe), gemma 1–3, deepseek-v2/v3
    (latent attention + MoE), phi3, gpt2 and opt keys. Raises :class:`InvalidInputError` naming
    any missing key.
    """
    source = "config.json"
    if not isinstance(config, dict):
        path = Path(config)
        if path.is_dir():
            path = path / "config.json"
        if not path.is_file():
            raise NotFoundError(f"no config.json at {path}", hint="pass the file or its folder")
        try:
            config = json.loads(path.read_text("utf-8"))
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"{path} is not valid JSON: {exc}") from exc
        if not isinstance(config, dict):
            raise InvalidInputError(f"{path} does not hold a JSON object")
        source = str(path)
        name = name or path.parent.name or "model"
    cfg = dict(config.get("text_config") or {}) or config  # multimodal wrappers (gemma3, …)
    mtype = str(cfg.get("model_type") or config.get("model_type") or "llama")
    fam = dict(_FAMILY.get(mtype, {}))

    found = {field: _get(cfg, keys) for field, keys in _FIRST_KEY.items()}
    ffn = _get(cfg, ("intermediate_size", "n_inner", "ffn_dim"))
    if ffn is None and found["hidden_size"] is not None and mtype in ("gpt2", "opt"):
        ffn = 4 * found["hidden_size"]
    missing = [_FIRST_KEY[f][0] for f, v in found.items() if v is None]
    missing += ["intermediate_size"] if ffn is None else []
    if missing:
        raise InvalidInputError(
            f"config.json ({mtype}) is missing {', '.join(missing)}",
            hint="pass the model's full config.json, or describe it by hand (compute model --help)",
        )
    spec: dict[str, Any] = {
        "name": name or str(cfg.get("_name_or_path") or mtype),
        "source": source,
        "family": mtype,
        **found,
        "ffn_size": ffn,
        "n_kv_heads": cfg.get("num_key_value_heads"),
        "head_dim": cfg.get("head_dim"),
        "context_length": _get(cfg, ("max_position_embeddings", "n_positions", "n_ctx")),
        **fam,
    }
    if "tie_word_embeddings" in cfg or "tie_word_embeddings" in config:
        spec["tie_embeddings"] = bool(
            cfg.get("tie_word_embeddings", config.get("tie_word_embeddings"))
        )
    if cfg.get("attention_bias"):
        spec["attn_bias"] = "qkv" if mtype.startswith("qwen") else "all"
    if cfg.get("mlp_bias"):
        spec["mlp_bias"] = True
    if mtype == "opt" and spec["context_length"]:
        spec["context_length"] += 2  # OPT's learned position table has a 2-row offset
    _sliding(cfg, mtype, spec)
    _moe(cfg, spec)
    for key in (
        "q_lora_rank",
        "kv_lora_rank",
        "qk_nope_head_dim",
        "qk_rope_head_dim",
        "v_head_dim",
    ):
        if cfg.get(key) is not None and cfg.get("kv_lora_rank") is not None:
            spec[key] = cfg[key]
    return from_params(**spec)


def _sliding(cfg: dict[str, Any], mtype: str, spec: dict[str, Any]) -> None:
    window = cfg.get("sliding_window")
    if not window or cfg.get("use_sliding_window") is False:
        return
    spec["sliding_window"] = window
    n = spec["n_layers"]
    if isinstance(cfg.get("layer_types"), list):
        spec["sliding_layers"] = sum(1 for t in cfg["layer_types"] if "sliding" in str(t))
    elif cfg.get("sliding_window_pattern"):
        spec["sliding_layers"] = n - n // int(cfg["sliding_window_pattern"])
    elif mtype.startswith("gemma3"):
        spec["sliding_layers"] = n - n // 6  # five local layers, then one global
    elif mtype == "gemma2":
        spec["sliding_layers"] = (n + 1) // 2  # alternating, starting with a local layer
    elif cfg.get("use_sliding_window") and cfg.get("max_window_layers") is not None:
        spec["sliding_layers"] = max(0, n - int(cfg["max_window_layers"]))


def _moe(cfg: dict[str, Any], spec: dict[str, Any]) -> None:
    experts = _get(cfg, ("num_local_experts", "n_routed_experts", "num_experts"))
    if not experts:
        return
    spec["n_experts"] = experts
    spec["experts_per_token"] = cfg.get("num_experts_per_tok") or 0
    spec["expert_ffn_size"] = cfg.get("moe_intermediate_size") or spec["ffn_size"]
    if cfg.get("n_shared_experts"):
        spec["n_shared_experts"] = cfg["n_shared_experts"]
    if cfg.get("shared_expert_intermediate_size"):
        spec["n_shared_experts"] = 1
        spec["shared_expert_ffn_size"] = cfg["shared_expert_intermediate_size"]
    if cfg.get("first_k_dense_replace"):
        spec["first_dense_layers"] = cfg["first_k_dense_replace"]


# ---- GGUF ---------------------------------------------------------------------------------------
def from_gguf(path: str | Path, *, name: str | None = None) -> ModelSpec:
    """A spec from a GGUF file's metadata and tensor directory (no weights are read).

    ``stored_params`` / ``stored_bytes`` record what the file holds, so the computed count can be
    checked against it and the serving estimate can use the file's real size.
    """
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"no GGUF file at {path}")
    fields, infos = read_gguf_header(path)
    arch = fields.get("general.architecture")
    if not arch:
        raise InvalidInputError(f"{path} has no general.architecture", hint="is it a model file?")
    tensors = {t.name: t for t in infos}

    def meta(key: str) -> Any:
        value = fields.get(f"{arch}.{key}")
        if isinstance(value, list):  # per-layer arrays: the planner uses the widest layer
            value = max(value) if value else None
        return value

    hidden, layers, heads = (
        meta("embedding_length"),
        meta("block_count"),
        meta("attention.head_count"),
    )
    ffn = meta("feed_forward_length") or meta("expert_feed_forward_length")
    vocab = meta("vocab_size") or _vocab(fields, tensors)
    required = {
        "embedding_length": hidden,
        "block_count": layers,
        "attention.head_count": heads,
        "feed_forward_length": ffn,
        "vocab_size": vocab,
    }
    missing = [f"{arch}.{k}" for k, v in required.items() if not v]
    if missing:
        raise InvalidInputError(f"{path}: GGUF metadata lacks {', '.join(missing)}")
    blk = {n[len("blk.0.") :] for n in tensors if n.startswith("blk.0.")}
    own_norms = {
        "attn_q_norm.weight",
        "attn_k_norm.weight",
        "attn_q_a_norm.weight",
        "attn_kv_a_norm.weight",
    }
    spec: dict[str, Any] = {
        "name": name or fields.get("general.name") or path.stem,
        "source": str(path),
        "family": str(arch),
        "n_layers": layers,
        "hidden_size": hidden,
        "n_heads": heads,
        "n_kv_heads": meta("attention.head_count_kv"),
        "ffn_size": meta("feed_forward_length") or ffn,
        "vocab_size": vocab,
        "tie_embeddings": "output.weight" not in tensors,
        "gated_ffn": bool({"ffn_gate.weight", "ffn_gate_exps.weight"} & blk),
        "norm": "layernorm" if "attn_norm.bias" in blk else "rmsnorm",
        "norms_per_layer": len({b for b in blk if b.endswith("norm.weight")} - own_norms),
        "qk_norm": "attn_q_norm.weight" in blk,
        "attn_bias": "all"
        if "attn_output.bias" in blk
        else "qkv"
        if "attn_q.bias" in blk
        else "none",
        "mlp_bias": "ffn_up.bias" in blk,
        "context_length": meta("context_length"),
        "stored_params": sum(t.n_elements for t in infos),
        "stored_bytes": sum(t.n_bytes for t in infos),
    }
    if "position_embd.weight" in tensors:
        spec["position"] = "learned"
        spec["context_length"] = int(tensors["position_embd.weight"].shape[-1])
    kv_rank = meta("attention.kv_lora_rank")
    key_len, rope = meta("attention.key_length"), meta("rope.dimension_count")
    if kv_rank:
        spec.update(
            kv_lora_rank=kv_rank,
            q_lora_rank=meta("attention.q_lora_rank") or None,
            qk_rope_head_dim=rope,
            qk_nope_head_dim=key_len - rope,
            v_head_dim=meta("attention.value_length"),
        )
    elif key_len:
        spec["head_dim"] = key_len
    if meta("expert_count"):
        spec.update(
            n_experts=meta("expert_count"),
            experts_per_token=meta("expert_used_count"),
            expert_ffn_size=meta("expert_feed_forward_length") or ffn,
            n_shared_experts=meta("expert_shared_count") or 0,
            first_dense_layers=meta("leading_dense_block_count") or 0,
        )
        if meta("expert_shared_feed_forward_length"):
            spec["shared_expert_ffn_size"] = meta("expert_shared_feed_forward_length")
        if "ffn_up_shexp.weight" in blk and not spec["n_shared_experts"]:
            spec["n_shared_experts"] = 1
    window = meta("attention.sliding_window")
    if window:
        spec["sliding_window"] = window
        pattern = fields.get(f"{arch}.attention.sliding_window_pattern")
        if isinstance(pattern, list):  # one flag per layer: true = sliding window
            spec["sliding_layers"] = sum(1 for flag in pattern if flag)
        else:  # llama.cpp hard-codes these patterns (every Nth layer global)
            every = pattern or {"gemma3": 6, "gemma2": 2}.get(str(arch))
            if every:
                spec["sliding_layers"] = layers - layers // int(every)
    return from_params(**spec)


def _vocab(fields: dict[str, Any], tensors: dict[str, TensorInfo]) -> int | None:
    tokens = fields.get("tokenizer.ggml.tokens")
    if isinstance(tokens, ArrayLength | list):
        return tokens.length if isinstance(tokens, ArrayLength) else len(tokens)
    emb = tensors.get("token_embd.weight")
    return emb.shape[-1] if emb is not None else None


# ---- resolving what the user typed ---------------------------------------------------------------
def _norm_name(name: str) -> str:
    return re.sub(r"[^0-9a-z.]", "", name.lower())


def load_model(ref: str | Path | ModelSpec) -> ModelSpec:
    """A catalog name (``llama3-8b``), a ``config.json`` (or its folder), or a ``.gguf`` file."""
    from hanlin.compute.known_models import KNOWN_MODELS

    if isinstance(ref, ModelSpec):
        return ref
    text = str(ref)
    path = Path(text).expanduser()
    if path.exists():
        if path.is_dir() and not (path / "config.json").is_file():
            ggufs = sorted(path.glob("*.gguf"))
            if len(ggufs) == 1:
                return from_gguf(ggufs[0])
            raise NotFoundError(f"{path} holds no config.json", hint="pass the config.json path")
        if path.suffix.lower() == ".gguf":
            return from_gguf(path)
        return from_hf_config(path)
    by_name = {_norm_name(k): v for k, v in KNOWN_MODELS.items()}
    spec = by_name.get(_norm_name(text))
    if spec is not None:
        return spec
    if text.lower().endswith((".json", ".gguf")) or "/" in text:
        raise NotFoundError(f"no such file: {text}", hint="check the path")
    close = difflib.get_close_matches(text.lower(), list(KNOWN_MODELS), n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise NotFoundError(
        f"unknown model {text!r}",
        hint=f"{hint}pass a known name (`hanlin compute model --list`), a config.json or a .gguf",
    )
