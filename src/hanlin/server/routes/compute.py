"""``/api/compute``: the compute planner over HTTP — the same calls ``hanlin compute`` makes.

A model is a known name (``llama3-8b``; see ``GET /api/compute/models``), a Hugging Face
``config.json`` object, or hyperparameters (``{"n_layers": …, "hidden_size": …}``). File paths are
not accepted: the server never reads files a client names.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from hanlin.access.auth import Principal
from hanlin.compute import KNOWN_MODELS, list_gpus
from hanlin.compute.plans import model_from_request, plan_finetune, plan_serving, plan_training
from hanlin.compute.training import DEFAULT_USD_CNY
from hanlin.server.auth import principal
from hanlin.server.jsonbody import JSONRoute
from hanlin.server.state import ServerState, get_state

router = APIRouter(prefix="/api/compute", tags=["compute"], route_class=JSONRoute)
ModelRef = str | dict[str, Any]
Count = str | int


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
    values = body.model_dump(exclude={"model", "tokens", "gpu"})
    return plan_training(model_from_request(body.model), body.tokens, body.gpu, **values).to_dict()


@router.post("/finetune", summary="Fine-tuning memory per GPU (full, LoRA, QLoRA), and time")
def finetune(body: FinetuneBody, caller: Principal = Depends(principal)) -> dict[str, Any]:
    values = body.model_dump(exclude={"model", "gpu"})
    plan, _ = plan_finetune(model_from_request(body.model), body.gpu, **values)
    return plan.to_dict()


@router.post("/serve", summary="Serving memory, max concurrency and speed bounds")
def serve(body: ServeBody, caller: Principal = Depends(principal)) -> dict[str, Any]:
    values = body.model_dump(exclude={"model", "gpu"})
    est, _ = plan_serving(model_from_request(body.model), body.gpu, **values)
    return est.model_dump(mode="json")
