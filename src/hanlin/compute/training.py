"""Training compute: FLOPs, wall-clock time, GPU-days and rental cost.

``6·N·D`` (forward 2·N·D + backward 4·N·D, Kaplan et al. 2020) with ``N`` the active parameters
that multiply (the embedding lookup costs nothing; an MoE counts only routed-to experts). Options:
the attention term ``12·L·d_attn·T`` per token (PaLM, Chowdhery et al. 2022, appendix B: quadratic
in context, not covered by ``6·N``) and full activation recomputation, one more forward pass:
``8·N·D`` (Narayanan et al. 2021, eq. 3).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from hanlin.compute.architecture import ModelSpec, Term
from hanlin.compute.gpus import GPUSpec, Precision, get_gpu
from hanlin.errors import InvalidInputError

#: CNY per USD used when only one currency is given; override per call (``usd_cny=``).
DEFAULT_USD_CNY = 7.2
Currency = Literal["USD", "CNY"]
Method = Literal["full", "lora", "qlora"]


class FlopsEstimate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flops: float
    flops_per_token: float
    terms: list[Term]


class TrainingEstimate(BaseModel):
    """Compute, time and cost of one training run; ``terms`` shows the arithmetic."""

    model_config = ConfigDict(extra="forbid")

    model: str
    gpu: str
    gpus: int
    tokens: int
    flops: float
    achieved_flops_per_gpu: float
    mfu: float
    seconds: float
    gpu_hours: float
    gpu_days: float
    cost_usd: float | None = None
    cost_cny: float | None = None
    terms: list[Term]
    assumptions: list[str] = Field(default_factory=list)


def attention_flops_per_token(model: ModelSpec, seq_len: int) -> float:
    """Forward + backward FLOPs of the score and value matmuls per token (PaLM's 12·L·H·Q·T).

    Counted for the full (non-causal) T×T product, as PaLM's MFU convention does; a causal kernel
    does about half of it. Sliding-window layers attend to at most their window.
    """
    qk = model.q_dim
    v = model.v_dim if model.is_mla else model.q_dim
    return 6.0 * (qk + v) * model.attended_tokens(seq_len)


def training_flops(
    model: ModelSpec,
    tokens: int,
    *,
    seq_len: int | None = None,
    attention: bool = False,
    recompute: bool = False,
    method: Method = "full",
) -> FlopsEstimate:
    """FLOPs to train ``model`` on ``tokens`` tokens.

    ``method="lora"``/``"qlora"``: the frozen weights need no weight gradients, so the backward
    pass is 2·N instead of 4·N per token (adapter FLOPs are negligible).
    """
    if tokens <= 0:
        raise InvalidInputError("tokens must be positive", hint="e.g. --tokens 300B")
    n = model.flops_params
    passes = {"full": 6, "lora": 4, "qlora": 4}[method] + (2 if recompute else 0)
    parts = ["fwd 2", "bwd 4" if method == "full" else "bwd 2, frozen weights get no gradient"]
    parts += ["recomputed fwd 2"] if recompute else []
    what = f"{passes} ({' + '.join(parts)})"
    active = " active" if model.is_moe else ""
    terms = [
        Term(
            name=f"N ({'active ' if model.is_moe else ''}matmul parameters)",
            value=n,
            unit="params",
            formula=f"{model.active_params:,}{active} params − embedding lookup",
        ),
        Term(name="D (training tokens)", formula="given", value=tokens, unit="tokens"),
        Term(
            name="dense FLOPs", formula=f"{what} · N · D", value=passes * n * tokens, unit="FLOPs"
        ),
    ]
    per_token = float(passes * n)
    if attention:
        seq = seq_len or model.context_length or 2048
        attn = attention_flops_per_token(model, seq) * (passes / 6)
        per_token += attn
        terms.append(
            Term(
                name="attention FLOPs",
                unit="FLOPs",
                value=attn * tokens,
                formula=f"{passes}/6 · 6 · (d_qk + d_v) · Σ_layers T, T = {seq:,} · D",
            )
        )
    total = per_token * tokens
    terms.append(Term(name="training FLOPs", formula="sum", value=total, unit="FLOPs", total=True))
    return FlopsEstimate(flops=total, flops_per_token=per_token, terms=terms)


def _cost(
    hours: float, price: float | None, currency: Currency, usd_cny: float
) -> tuple[float | None, float | None, list[Term]]:
    if price is None:
        return None, None, []
    if price < 0 or usd_cny <= 0:
        raise InvalidInputError("prices and exchange rates must be positive")
    usd = hours * (price if currency == "USD" else price / usd_cny)
    cny = usd * usd_cny
    terms = [
        Term(
            name="cost (USD)",
            unit="USD",
            value=usd,
            formula=f"GPU-hours × {price:g} {currency}/GPU-h"
            + (f" ÷ {usd_cny:g} CNY/USD" if currency == "CNY" else ""),
        ),
        Term(name="cost (CNY)", unit="CNY", value=cny, formula=f"USD × {usd_cny:g} CNY/USD"),
    ]
    return usd, cny, terms


def training_time(
    model: ModelSpec,
    tokens: int,
    gpu: str | GPUSpec,
    gpus: int,
    *,
    mfu: float | None = None,
    achieved_tflops: float | None = None,
    precision: Precision = "bf16",
    seq_len: int | None = None,
    attention: bool = False,
    recompute: bool = False,
    method: Method = "full",
    price_per_gpu_hour: float | None = None,
    currency: Currency = "USD",
    usd_cny: float = DEFAULT_USD_CNY,
) -> TrainingEstimate:
    """Time, GPU-days and cost at a model-FLOPs utilisation (or a measured TFLOP/s per GPU).

    The utilisation applies to the FLOPs counted: with ``recompute`` it is hardware-FLOPs
    utilisation (Narayanan et al.'s 140 TFLOP/s per A100 counts the recomputed forward pass).
    """
    spec = get_gpu(gpu)
    if gpus < 1:
        raise InvalidInputError(f"--gpus must be at least 1, got {gpus}")
    if (mfu is None) == (achieved_tflops is None):
        raise InvalidInputError(
            "give exactly one of mfu or achieved TFLOP/s per GPU",
            hint="e.g. --mfu 0.4, or --tflops 140",
        )
    peak = spec.peak_flops(precision)
    if achieved_tflops is not None:
        if achieved_tflops <= 0:
            raise InvalidInputError("achieved TFLOP/s must be positive")
        achieved = achieved_tflops * 1e12
        mfu = achieved / peak
        how = f"{achieved_tflops:g} TFLOP/s measured = {mfu:.1%} of {precision} peak"
    else:
        assert mfu is not None
        if not 0 < mfu <= 1:
            raise InvalidInputError(f"MFU must be in (0, 1], got {mfu}", hint="e.g. --mfu 0.4")
        achieved = mfu * peak
        how = f"MFU {mfu:g} × {spec.name} dense {precision} peak {peak / 1e12:,.1f} TFLOP/s"
    f = training_flops(
        model, tokens, seq_len=seq_len, attention=attention, recompute=recompute, method=method
    )
    seconds = f.flops / (gpus * achieved)
    gpu_hours = gpus * seconds / 3600
    usd, cny, cost_terms = _cost(gpu_hours, price_per_gpu_hour, currency, usd_cny)
    terms = [
        *f.terms,
        Term(name="throughput per GPU", formula=how, value=achieved, unit="FLOP/s"),
        Term(
            name="wall-clock time",
            formula=f"FLOPs ÷ ({gpus:,} GPU{'s' if gpus > 1 else ''} × throughput)",
            value=seconds,
            unit="s",
        ),
        Term(name="GPU-hours", formula=f"{gpus:,} × time ÷ 3,600 s", value=gpu_hours, unit="GPU-h"),
        Term(
            name=f"{spec.name} GPU-days",
            formula="GPU-hours ÷ 24",
            value=gpu_hours / 24,
            unit="GPU-days",
            total=True,
        ),
        *cost_terms,
    ]
    assumptions = [
        "perfect scaling across GPUs: the utilisation already includes communication stalls",
        "utilisation is of the counted FLOPs (hardware FLOPs when recompute is on)",
    ]
    if currency == "CNY" or price_per_gpu_hour is not None:
        assumptions.append(f"exchange rate {usd_cny:g} CNY per USD")
    return TrainingEstimate(
        model=model.name,
        gpu=spec.name,
        gpus=gpus,
        tokens=tokens,
        flops=f.flops,
        achieved_flops_per_gpu=achieved,
        mfu=mfu,
        seconds=seconds,
        gpu_hours=gpu_hours,
        gpu_days=gpu_hours / 24,
        cost_usd=usd,
        cost_cny=cny,
        terms=terms,
        assumptions=assumptions,
    )


def implied_mfu(
    model: ModelSpec | float,
    tokens: int,
    gpu_hours: float,
    gpu: str | GPUSpec,
    *,
    precision: Precision = "bf16",
) -> float:
    """The MFU a reported run achieved: ``6·N·D / (GPU-hours · 3600 · peak)``.

    ``model`` may be a spec (N = its matmul parameters) or a bare parameter count.
    """
    if gpu_hours <= 0:
        raise InvalidInputError("GPU-hours must be positive")
    n = model.flops_params if isinstance(model, ModelSpec) else float(model)
    return 6.0 * n * tokens / (gpu_hours * 3600 * get_gpu(gpu).peak_flops(precision))
