"""The planner's operations as every surface asks them: pre-training, fine-tuning and serving
plans from plain values, and the model a request names. ``hanlin compute …`` and
``/api/compute/…`` both call these, so the two give the same numbers and the same notes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict

from hanlin.compute.architecture import ModelSpec
from hanlin.compute.gpus import Precision
from hanlin.compute.inference import ServeEstimate, ServeOptions, serve_estimate
from hanlin.compute.memory import MemoryEstimate, TrainMemoryOptions, training_memory
from hanlin.compute.model_spec import from_hf_config, from_params, load_model
from hanlin.compute.training import DEFAULT_USD_CNY, TrainingEstimate, training_time
from hanlin.compute.units import parse_context, parse_count, validated
from hanlin.errors import InvalidInputError

#: model-FLOPs utilisation assumed when neither ``mfu`` nor ``tflops`` is given
ASSUMED_MFU = 0.4


class TrainingPlan(BaseModel):
    """A pre-training or fine-tuning plan: memory per GPU and, when tokens are given, time."""

    model_config = ConfigDict(extra="forbid")

    memory: MemoryEstimate
    training: TrainingEstimate | None = None

    def to_dict(self) -> dict[str, Any]:
        """``{"training": …, "memory": …}`` (``training`` only when it was estimated)."""
        out: dict[str, Any] = {}
        if self.training is not None:
            out["training"] = self.training.model_dump(mode="json")
        out["memory"] = self.memory.model_dump(mode="json")
        return out


def model_from_request(ref: str | dict[str, Any]) -> ModelSpec:
    """The model a remote client names: a known name, a ``config.json`` object or
    hyperparameters. File paths are refused — a server never reads files a client names."""
    if isinstance(ref, dict):
        if "model_type" in ref or "architectures" in ref:
            return from_hf_config(ref)
        return from_params(**ref)
    text = ref.strip()
    if (
        any(ch in text for ch in "/\\~")
        or text.lower().endswith((".json", ".gguf"))
        or text.startswith(".")
        or Path(text).exists()
    ):
        raise InvalidInputError(
            f"{text!r} looks like a file path; the server takes model names or config objects",
            hint="pass a known name (GET /api/compute/models) or the config.json content",
        )
    return load_model(text)


def _precision(text: str) -> Precision:
    if text not in get_args(Precision):
        raise InvalidInputError(
            f"unknown precision {text!r}", hint=f"one of {', '.join(get_args(Precision))}"
        )
    return text  # type: ignore[return-value]


def plan_training(
    spec: ModelSpec,
    tokens: str | int,
    gpu: str,
    *,
    gpus: int = 1,
    mfu: float | None = None,
    tflops: float | None = None,
    precision: str = "bf16",
    recompute: bool = False,
    attention: bool = False,
    seq: str | int | None = None,
    price_usd: float | None = None,
    price_cny: float | None = None,
    usd_cny: float = DEFAULT_USD_CNY,
    tp: int = 1,
    pp: int = 1,
    zero: int = 1,
    micro_batch: int = 1,
    flags: Mapping[str, str] | None = None,
) -> TrainingPlan:
    """Pre-training: FLOPs, time, GPU-days and cost on ``gpus`` × ``gpu``, and memory per GPU
    (full training with checkpointing, sharded by ``tp``/``pp``/``zero``). Without ``mfu`` or
    ``tflops`` a utilisation of 0.4 is assumed, and said so. ``seq`` defaults to the model's
    context length (2048 when unknown). Raises :class:`InvalidInputError` for bad values;
    ``flags`` names the options in its message as the caller spells them."""
    if price_usd is not None and price_cny is not None:
        raise InvalidInputError("give a price in USD or in CNY, not both")
    seq_len = parse_context(seq) if seq is not None else (spec.context_length or 2048)
    assumed = mfu is None and tflops is None
    est = training_time(
        spec,
        parse_count(tokens, what="token count"),
        gpu,
        gpus,
        mfu=ASSUMED_MFU if assumed else mfu,
        achieved_tflops=tflops,
        precision=_precision(precision),
        seq_len=seq_len,
        attention=attention,
        recompute=recompute,
        price_per_gpu_hour=price_cny if price_cny is not None else price_usd,
        currency="CNY" if price_cny is not None else "USD",
        usd_cny=usd_cny,
    )
    if assumed:
        est.assumptions.insert(0, f"no mfu given: assumed {ASSUMED_MFU}")
    opts = validated(
        TrainMemoryOptions,
        dict(flags or {}),
        method="full",
        seq_len=seq_len,
        micro_batch=micro_batch,
        gpus=gpus,
        tp=tp,
        pp=pp,
        zero=zero,
        grad_checkpointing=True,
    )
    return TrainingPlan(training=est, memory=training_memory(spec, opts, gpu))


def plan_finetune(
    spec: ModelSpec,
    gpu: str,
    *,
    method: str = "lora",
    seq: str | int = 2048,
    micro_batch: int = 1,
    gpus: int = 1,
    rank: int = 16,
    targets: str = "all-linear",
    optimizer: str = "adamw",
    precision: str = "bf16-mixed",
    grad_ckpt: bool = True,
    attention: str = "flash",
    zero: int = 0,
    tp: int = 1,
    pp: int = 1,
    tokens: str | int | None = None,
    mfu: float = 0.35,
    flags: Mapping[str, str] | None = None,
) -> tuple[TrainingPlan, TrainMemoryOptions]:
    """Fine-tuning (full, LoRA, QLoRA): memory per GPU, and time when ``tokens`` is given.
    Returns the plan and the options it was computed with (for a title)."""
    opts = validated(
        TrainMemoryOptions,
        dict(flags or {}),
        method=method,
        seq_len=parse_context(seq),
        micro_batch=micro_batch,
        gpus=gpus,
        lora_rank=rank,
        lora_targets=targets,
        optimizer=optimizer,
        precision=precision,
        grad_checkpointing=grad_ckpt,
        attention=attention,
        zero=zero,
        tp=tp,
        pp=pp,
    )
    plan = TrainingPlan(memory=training_memory(spec, opts, gpu))
    if tokens is not None:
        plan.training = training_time(
            spec,
            parse_count(tokens, what="token count"),
            gpu,
            gpus,
            mfu=mfu,
            recompute=grad_ckpt,
            method=opts.method,
        )
    return plan, opts


def plan_serving(
    spec: ModelSpec,
    gpu: str,
    *,
    context: str | int = "4k",
    concurrency: int = 1,
    gpus: int = 1,
    quant: str | None = None,
    kv_dtype: str = "bf16",
    bw_eff: float = 0.75,
    mfu: float = 0.5,
    mem_util: float = 0.9,
    flags: Mapping[str, str] | None = None,
) -> tuple[ServeEstimate, ServeOptions]:
    """Serving: weights, KV cache, max concurrency and speed bounds. ``quant`` defaults to the
    file's own quantization for a GGUF model, else bf16. Returns the estimate and its options."""
    opts = validated(
        ServeOptions,
        dict(flags or {}),
        context=parse_context(context),
        concurrency=concurrency,
        gpus=gpus,
        quant=quant or ("file" if spec.stored_bytes is not None else "bf16"),
        kv_dtype=kv_dtype,
        bandwidth_efficiency=bw_eff,
        compute_efficiency=mfu,
        memory_utilization=mem_util,
    )
    return serve_estimate(spec, gpu, opts), opts


__all__ = [
    "ASSUMED_MFU",
    "TrainingPlan",
    "model_from_request",
    "plan_finetune",
    "plan_serving",
    "plan_training",
]
