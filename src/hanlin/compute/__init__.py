"""The compute planner: training FLOPs, GPU-days and cost; memory for training and serving;
a GPU catalog; model descriptions read from hand-given shapes, ``config.json`` or GGUF files.

Every estimate carries ``terms``: the named lines of arithmetic behind it (see ``docs/compute.md``).
"""

from __future__ import annotations

from hanlin.compute.architecture import ModelSpec, Term
from hanlin.compute.gpus import CATALOG, GPUSpec, get_gpu, list_gpus, load_user_gpus
from hanlin.compute.inference import (
    QUANTS,
    ServeEstimate,
    ServeOptions,
    kv_cache_bytes_per_token,
    serve_estimate,
    weight_bytes,
)
from hanlin.compute.known_models import KNOWN_MODELS
from hanlin.compute.memory import (
    MemoryEstimate,
    TrainMemoryOptions,
    activation_bytes_per_token,
    lora_params,
    model_state_terms,
    training_memory,
)
from hanlin.compute.model_spec import from_gguf, from_hf_config, from_params, load_model
from hanlin.compute.training import (
    DEFAULT_USD_CNY,
    FlopsEstimate,
    TrainingEstimate,
    attention_flops_per_token,
    implied_mfu,
    training_flops,
    training_time,
)
from hanlin.compute.units import parse_context, parse_count, validated

__all__ = [
    "CATALOG",
    "DEFAULT_USD_CNY",
    "KNOWN_MODELS",
    "QUANTS",
    "FlopsEstimate",
    "GPUSpec",
    "MemoryEstimate",
    "ModelSpec",
    "ServeEstimate",
    "ServeOptions",
    "Term",
    "TrainMemoryOptions",
    "TrainingEstimate",
    "activation_bytes_per_token",
    "attention_flops_per_token",
    "from_gguf",
    "from_hf_config",
    "from_params",
    "get_gpu",
    "implied_mfu",
    "kv_cache_bytes_per_token",
    "list_gpus",
    "load_model",
    "load_user_gpus",
    "lora_params",
    "model_state_terms",
    "parse_context",
    "parse_count",
    "serve_estimate",
    "training_flops",
    "training_memory",
    "training_time",
    "validated",
    "weight_bytes",
]
