"""``/api/compute``: the compute planner over HTTP — the same calls ``hanlin compute`` makes.

A model is a known name (``llama3-8b``; see ``GET /api/compute/models``), a Hugging Face
``config.json`` object, or hyperparameters (``{"n_layers": …, "hidden_size": …}``). File paths are
not accepted: the server never reads files a client names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from hanlin.access.auth import Principal
from hanlin.compute import (
    KNOWN_MODELS,
    ModelSpec,
    ServeOptions,
    TrainMemoryOptions,
    from_hf_config,
    from_params,
    list_gpus,
    load_model,
    parse_context,
    parse_count,
    serve_estimate,
    training_memory,
    training_time,
    validated,
)
from hanlin.compute.training import DEFAULT_USD_CNY
from hanlin.errors import InvalidInputError
from hanlin.server.auth import principal
from hanlin.server.jsonbody import JSONRoute
from hanlin.server.state import ServerState, get_state

router = APIRouter(prefix="/api/compute", tags=["compute"], route_class=JSONRoute)
ModelRef = str | dict[str, Any]
Count = str | int


def _model(ref: ModelRef) -> ModelSpec:
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


class TrainBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: ModelRef
    tokens: Count
    gpu: str
    gpus: int = Field(default=1, ge=1, le=1_000_000)
    mfu: float | None = Field(default=None, gt=0, le=1)
    tflops: float | None = Field(default=None, gt=0)
    precision: Literal["bf16", "fp16", "fp8", "int8"] = "bf16"
    recompute: bool = False
    attention: bool = False
    seq: Count | None = None
    price_usd: float | None = Field(default=None, ge=0)
    price_cny: float | None = Field(default=None, ge=0)
    usd_cny: float = Field(default=DEFAULT_USD_CNY, gt=0)
    tp: int = Field(default=1, ge=1, le=1024)
    pp: int = Field(default=1, ge=1, le=1024)
    zero: Literal[0, 1, 2, 3] = 1
    micro_batch: int = Field(default=1, ge=1, le=65536)


class FinetuneBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: ModelRef
    gpu: str
    method: Literal["full", "lora", "qlora"] = "lora"
    seq: Count = 2048
    micro_batch: int = Field(default=1, ge=1, le=65536)
    gpus: int = Field(default=1, ge=1, le=1_000_000)
    rank: int = Field(default=16, ge=1, le=65536)
    targets: str = "all-linear"
    optimizer: str = "adamw"
    precision: str = "bf16-mixed"
    grad_ckpt: bool = True
    attention: Literal["flash", "eager"] = "flash"
    zero: Literal[0, 1, 2, 3] = 0
    tp: int = Field(default=1, ge=1, le=1024)
    pp: int = Field(default=1, ge=1, le=1024)
    tokens: Count | None = None
    mfu: float = Field(default=0.35, gt=0, le=1)


class ServeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: ModelRef
    gpu: str
    context: Count = "4k"
    concurrency: int = Field(default=1, ge=1, le=1_000_000)
    gpus: int = Field(default=1, ge=1, le=1_000_000)
    quant: str | None = None
    kv_dtype: str = "bf16"
    bw_eff: float = Field(default=0.75, gt=0, le=1)
    mfu: float = Field(default=0.5, gt=0, le=1)
    mem_util: float = Field(default=0.9, gt=0, le=1)


@router.get("/gpus", summary="The accelerator catalog")
def gpus(caller: Principal = Depends(principal), state: ServerState = Depends(get_state)) -> Any:
    return {"data": [g.model_dump(mode="json") for g in list_gpus(state.settings.home)]}


@router.get("/models", summary="Model names the planner knows")
def models(caller: Principal = Depends(principal)) -> dict[str, Any]:
    return {"data": [{"name": n, "source": m.source} for n, m in KNOWN_MODELS.items()]}


@router.post("/train", summary="Pre-training compute: FLOPs, time, GPU-days, cost, memory")
def train(body: TrainBody, caller: Principal = Depends(principal)) -> dict[str, Any]:
    spec = _model(body.model)
    if body.price_usd is not None and body.price_cny is not None:
        raise InvalidInputError("give price_usd or price_cny, not both")
    seq_len = parse_context(body.seq) if body.seq is not None else (spec.context_length or 2048)
    assumed = body.mfu is None and body.tflops is None
    est = training_time(
        spec,
        parse_count(body.tokens, what="token count"),
        body.gpu,
        body.gpus,
        mfu=0.4 if assumed else body.mfu,
        achieved_tflops=body.tflops,
        precision=body.precision,
        seq_len=seq_len,
        attention=body.attention,
        recompute=body.recompute,
        price_per_gpu_hour=body.price_cny if body.price_cny is not None else body.price_usd,
        currency="CNY" if body.price_cny is not None else "USD",
        usd_cny=body.usd_cny,
    )
    if assumed:
        est.assumptions.insert(0, "no mfu given: assumed 0.4")
    opts = validated(
        TrainMemoryOptions,
        method="full",
        seq_len=seq_len,
        micro_batch=body.micro_batch,
        gpus=body.gpus,
        tp=body.tp,
        pp=body.pp,
        zero=body.zero,
        grad_checkpointing=True,
    )
    mem = training_memory(spec, opts, body.gpu)
    return {"training": est.model_dump(mode="json"), "memory": mem.model_dump(mode="json")}


@router.post("/finetune", summary="Fine-tuning memory per GPU (full, LoRA, QLoRA), and time")
def finetune(body: FinetuneBody, caller: Principal = Depends(principal)) -> dict[str, Any]:
    spec = _model(body.model)
    opts = validated(
        TrainMemoryOptions,
        method=body.method,
        seq_len=parse_context(body.seq),
        micro_batch=body.micro_batch,
        gpus=body.gpus,
        lora_rank=body.rank,
        lora_targets=body.targets,
        optimizer=body.optimizer,
        precision=body.precision,
        grad_checkpointing=body.grad_ckpt,
        attention=body.attention,
        zero=body.zero,
        tp=body.tp,
        pp=body.pp,
    )
    payload: dict[str, Any] = {
        "memory": training_memory(spec, opts, body.gpu).model_dump(mode="json")
    }
    if body.tokens is not None:
        est = training_time(
            spec,
            parse_count(body.tokens, what="token count"),
            body.gpu,
            body.gpus,
            mfu=body.mfu,
            recompute=body.grad_ckpt,
            method=opts.method,
        )
        payload["training"] = est.model_dump(mode="json")
    return payload


@router.post("/serve", summary="Serving memory, max concurrency and speed bounds")
def serve(body: ServeBody, caller: Principal = Depends(principal)) -> dict[str, Any]:
    spec = _model(body.model)
    quant = body.quant or ("file" if spec.stored_bytes is not None else "bf16")
    opts = validated(
        ServeOptions,
        context=parse_context(body.context),
        concurrency=body.concurrency,
        gpus=body.gpus,
        quant=quant,
        kv_dtype=body.kv_dtype,
        bandwidth_efficiency=body.bw_eff,
        compute_efficiency=body.mfu,
        memory_utilization=body.mem_util,
    )
    return serve_estimate(spec, body.gpu, opts).model_dump(mode="json")
