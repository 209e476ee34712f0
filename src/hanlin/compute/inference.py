"""Serving: weight memory by precision, KV cache, how many sequences fit, and speed bounds.

Decode is bound by memory bandwidth (each step reads the weights once and every sequence's KV
cache); prefill is bound by compute (2·N FLOPs per token plus attention). Both are upper bounds
scaled by a stated efficiency — measured engines land below them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from hanlin.compute.architecture import ModelSpec, Term
from hanlin.compute.gpus import GPUSpec, Precision, get_gpu
from hanlin.errors import InvalidInputError

_L3_8B = 8_030_261_248  # Llama-3-8B, the reference model of llama-quantize's size table


def _gguf_bits(gib: float) -> float:
    return gib * 2**30 * 8 / _L3_8B


#: bits per weight and whether only the blocks' linear layers are quantized (embeddings and the
#: LM head kept in 16 bit), as AWQ/GPTQ/FP8 engines do; GGUF sizes are whole-file averages.
QUANTS: dict[str, tuple[float, bool, str]] = {
    "fp32": (32, False, "float32"),
    "bf16": (16, False, "bfloat16"),
    "fp16": (16, False, "float16"),
    "fp8": (8, True, "FP8 E4M3 weights, per-tensor scales (vLLM, TensorRT-LLM)"),
    "int8": (8, True, "INT8 weights, per-channel fp16 scales (W8A8 / W8A16)"),
    "int4": (4 + 20 / 128, True, "INT4, group 128, fp16 scale + 4-bit zero (AWQ/GPTQ)"),
    "awq": (4 + 20 / 128, True, "AWQ INT4, group 128"),
    "gptq": (4 + 20 / 128, True, "GPTQ INT4, group 128"),
    "nf4": (4.5, True, "bitsandbytes NF4, fp32 absmax per 64"),
    # llama-quantize's reference file sizes for Llama-3-8B (GiB), as whole-file bits per weight
    "q8_0": (_gguf_bits(7.96), False, "GGUF Q8_0 (7.96 GiB @ Llama-3-8B)"),
    "q6_k": (_gguf_bits(6.14), False, "GGUF Q6_K (6.14 GiB @ Llama-3-8B)"),
    "q5_k_m": (_gguf_bits(5.33), False, "GGUF Q5_K_M (5.33 GiB @ Llama-3-8B)"),
    "q5_k_s": (_gguf_bits(5.21), False, "GGUF Q5_K_S (5.21 GiB @ Llama-3-8B)"),
    "q5_0": (_gguf_bits(5.21), False, "GGUF Q5_0 (5.21 GiB @ Llama-3-8B)"),
    "q4_k_m": (_gguf_bits(4.58), False, "GGUF Q4_K_M (4.58 GiB @ Llama-3-8B)"),
    "q4_k_s": (_gguf_bits(4.37), False, "GGUF Q4_K_S (4.37 GiB @ Llama-3-8B)"),
    "q4_0": (_gguf_bits(4.34), False, "GGUF Q4_0 (4.34 GiB @ Llama-3-8B)"),
    "iq4_xs": (4.25, False, "GGUF IQ4_XS (4.25 bpw)"),
    "q3_k_l": (_gguf_bits(4.03), False, "GGUF Q3_K_L (4.03 GiB @ Llama-3-8B)"),
    "q3_k_m": (_gguf_bits(3.74), False, "GGUF Q3_K_M (3.74 GiB @ Llama-3-8B)"),
    "q3_k_s": (_gguf_bits(3.41), False, "GGUF Q3_K_S (3.41 GiB @ Llama-3-8B)"),
    "q2_k": (_gguf_bits(2.96), False, "GGUF Q2_K (2.96 GiB @ Llama-3-8B)"),
}
KV_BYTES: dict[str, float] = {
    "fp32": 4,
    "bf16": 2,
    "fp16": 2,
    "fp8": 1,
    "int8": 1,
    "q8_0": 34 / 32,
    "q4_0": 18 / 32,
}


class ServeOptions(BaseModel):
    """A deployment: sequences of ``context`` tokens, ``concurrency`` at once, on ``gpus`` GPUs
    (tensor parallel). Efficiencies are the fractions of peak bandwidth / FLOP/s reached."""

    model_config = ConfigDict(extra="forbid")

    context: int = Field(default=4096, ge=1)
    concurrency: int = Field(default=1, ge=1)
    gpus: int = Field(default=1, ge=1)
    quant: str = "bf16"
    kv_dtype: str = "bf16"
    memory_utilization: float = Field(default=0.90, gt=0, le=1)
    bandwidth_efficiency: float = Field(default=0.75, gt=0, le=1)
    compute_efficiency: float = Field(default=0.5, gt=0, le=1)
    batched_tokens: int = Field(default=8192, ge=1)
    cuda_context_gib: float = Field(default=0.75, ge=0)


class ServeEstimate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    gpu: str
    gpus: int
    weights_bytes: float
    kv_bytes_per_token: float
    kv_bytes_per_sequence: float
    kv_bytes_total: float
    memory_needed_bytes: float
    memory_available_bytes: float
    fits: bool
    max_concurrency: int
    decode_tokens_per_s_per_sequence: float
    decode_tokens_per_s_total: float
    prefill_tokens_per_s: float
    time_to_first_token_s: float
    terms: list[Term]
    assumptions: list[str] = Field(default_factory=list)


def weight_bytes(model: ModelSpec, quant: str = "bf16") -> tuple[float, str]:
    """Bytes of the weights at a precision, and the formula. ``quant="file"``: the GGUF's size."""
    key = quant.lower().replace("-", "_")
    if key == "file":
        if model.stored_bytes is None:
            raise InvalidInputError(
                "--quant file needs a model read from a .gguf file",
                hint="pass --model path/to/model.gguf, or a precision such as bf16 or q4_k_m",
            )
        return float(model.stored_bytes), f"{model.stored_bytes:,} B stored in the GGUF file"
    if key not in QUANTS:
        raise InvalidInputError(
            f"unknown weight precision {quant!r}", hint=f"one of: file, {', '.join(QUANTS)}"
        )
    bits, linear_only, what = QUANTS[key]
    n = model.total_params
    if linear_only:
        q = model.quantizable_params
        return (
            q * bits / 8 + (n - q) * 2,
            f"{q:,} linear × {bits:.3g} bit ({what}) + {n - q:,} embedding/norm × 16 bit",
        )
    return n * bits / 8, f"{n:,} params × {bits:.3g} bit ({what})"


def kv_cache_bytes_per_token(model: ModelSpec, kv_dtype: str = "bf16") -> tuple[float, str]:
    """KV-cache bytes per token over all layers: ``2 · layers · KV heads · head dim · bytes``.

    Latent attention (DeepSeek) caches ``layers · (kv_lora_rank + rope dim)`` instead.
    """
    b = _kv_bytes(kv_dtype)
    L = model.n_layers
    if model.is_mla:
        formula = (
            f"{L} layers × ({model.kv_lora_rank} latent + {model.qk_rope_head_dim} rope) × {b:g} B"
        )
    else:
        formula = (
            f"2 × {L} layers × {model.kv_heads} KV heads × {model.head_size} head dim × {b:g} B"
        )
    return L * model.kv_elements_per_token_per_layer * b, formula


def _kv_bytes(kv_dtype: str) -> float:
    key = kv_dtype.lower().replace("-", "_")
    if key not in KV_BYTES:
        raise InvalidInputError(
            f"unknown KV-cache dtype {kv_dtype!r}", hint=f"one of: {', '.join(KV_BYTES)}"
        )
    return KV_BYTES[key]


def _decode_weight_bytes(model: ModelSpec, weights: float, batch: int) -> tuple[float, str]:
    """Weight bytes one decode step reads: all of a dense model; for an MoE, the shared parts
    plus the experts that at least one of ``batch`` tokens is routed to (uniform routing)."""
    if not model.is_moe:
        return weights, "all weights once per step"
    per_expert = model.moe_layers * model.ffn_params(model.expert_width)
    expert_total = model.n_experts * per_expert
    scale = weights / model.total_params  # bytes per parameter at this precision
    share = 1 - (1 - model.experts_per_token / model.n_experts) ** batch
    touched = model.n_experts * share
    read = (model.total_params - expert_total + touched * per_expert) * scale
    return read, (
        f"non-expert weights + {touched:.1f} of {model.n_experts} experts per layer "
        f"touched by {batch} tokens (E·(1−(1−k/E)^B))"
    )


@dataclass(frozen=True, slots=True)
class _ServeMemory:
    """Where a deployment's memory goes (bytes, over all its GPUs)."""

    weights: float
    weights_formula: str
    kv_per_token: float
    kv_formula: str
    kv_per_sequence: float
    kv_total: float
    hidden: int  # h and f of the workspace formula
    ffn: int
    logit_rows: int
    workspace: float
    overhead: float
    usable: float

    @property
    def needed(self) -> float:
        return self.weights + self.kv_total + self.overhead + self.workspace

    @property
    def max_concurrency(self) -> int:
        for_kv = self.usable - self.weights - self.overhead - self.workspace
        if not self.kv_per_sequence:
            return 0
        return max(0, math.floor(for_kv / self.kv_per_sequence))


@dataclass(frozen=True, slots=True)
class _ServeSpeed:
    """Decode and prefill bounds (seconds per decode step, tokens/s for prefill)."""

    read_weights: float  # bytes one decode step reads
    read_formula: str
    step_memory: float
    step_compute: float
    precision: Precision
    prefill_tps: float

    @property
    def step(self) -> float:
        return max(self.step_memory, self.step_compute)


def _serve_memory(model: ModelSpec, spec: GPUSpec, o: ServeOptions) -> _ServeMemory:
    weights, w_formula = weight_bytes(model, o.quant)
    kv_tok, kv_formula = kv_cache_bytes_per_token(model, o.kv_dtype)
    kv_elements = model.attended_tokens(o.context) * model.kv_elements_per_token_per_layer
    kv_seq = kv_elements * _kv_bytes(o.kv_dtype)
    h, f = model.hidden_size, max(model.ffn_size, model.expert_width * model.experts_per_token)
    # one forward pass over a full token budget, plus fp32 logits for one token per sequence
    logit_rows = min(o.concurrency, o.batched_tokens)
    workspace = o.batched_tokens * 2 * (4 * h + 3 * f) + logit_rows * 4 * model.vocab_size
    return _ServeMemory(
        weights=weights,
        weights_formula=w_formula,
        kv_per_token=kv_tok,
        kv_formula=kv_formula,
        kv_per_sequence=kv_seq,
        kv_total=kv_seq * o.concurrency,
        hidden=h,
        ffn=f,
        logit_rows=logit_rows,
        workspace=workspace,
        overhead=o.gpus * o.cuda_context_gib * 2**30,
        usable=o.gpus * spec.memory_bytes * o.memory_utilization,
    )


def _serve_speed(
    model: ModelSpec, spec: GPUSpec, o: ServeOptions, mem: _ServeMemory
) -> _ServeSpeed:
    read_w, read_formula = _decode_weight_bytes(model, mem.weights, o.concurrency)
    bw = o.gpus * spec.bandwidth_gbs * 1e9 * o.bandwidth_efficiency
    precision: Precision = "fp8" if o.quant.lower() == "fp8" and spec.fp8_tflops else "bf16"
    flops_rate = o.gpus * spec.peak_flops(precision) * o.compute_efficiency
    attn_tok = 2 * (model.q_dim + model.v_dim)
    decode_flops = o.concurrency * (
        2 * model.flops_params + attn_tok * model.attended_tokens(o.context)
    )
    prefill_flops_tok = 2 * model.flops_params + attn_tok * model.attended_tokens(o.context) / 2
    return _ServeSpeed(
        read_weights=read_w,
        read_formula=read_formula,
        step_memory=(read_w + mem.kv_total) / bw,
        step_compute=decode_flops / flops_rate,
        precision=precision,
        prefill_tps=flops_rate / prefill_flops_tok,
    )


def _memory_terms(model: ModelSpec, spec: GPUSpec, o: ServeOptions, m: _ServeMemory) -> list[Term]:
    c = o.concurrency
    sliding = (
        f" ({model.n_sliding_layers} sliding layers keep {model.sliding_window:,})"
        if model.n_sliding_layers
        else ""
    )
    return [
        Term(name="weights", formula=m.weights_formula, value=m.weights, unit="bytes"),
        Term(name="KV cache per token", formula=m.kv_formula, value=m.kv_per_token, unit="bytes"),
        Term(
            name="KV cache per sequence",
            value=m.kv_per_sequence,
            unit="bytes",
            formula=f"per token × {o.context:,} tokens{sliding}",
        ),
        Term(
            name=f"KV cache for {c} sequences",
            formula=f"{c} × per sequence",
            value=m.kv_total,
            unit="bytes",
        ),
        Term(
            name="activation workspace",
            value=m.workspace,
            unit="bytes",
            formula=f"{o.batched_tokens:,} batched tokens × 2 B × (4·{m.hidden:,} + "
            f"3·{m.ffn:,}) + {m.logit_rows} sequences × 4 B × vocab {model.vocab_size:,}",
        ),
        Term(
            name="CUDA context",
            formula=f"{o.gpus} × {o.cuda_context_gib:g} GiB",
            value=m.overhead,
            unit="bytes",
        ),
        Term(
            name="memory needed",
            formula="weights + KV + workspace + context",
            value=m.needed,
            unit="bytes",
            total=True,
        ),
        Term(
            name="memory available",
            value=m.usable,
            unit="bytes",
            formula=f"{o.gpus} × {spec.name} {spec.memory_gib:g} GiB × "
            f"{o.memory_utilization:.0%} utilisation",
        ),
        Term(
            name="max concurrent sequences",
            value=m.max_concurrency,
            unit="seqs",
            total=True,
            formula="(available − weights − workspace − context) ÷ KV per sequence",
        ),
    ]


def _speed_terms(spec: GPUSpec, o: ServeOptions, s: _ServeSpeed) -> list[Term]:
    c = o.concurrency
    return [
        Term(
            name="weights read per decode step",
            formula=s.read_formula,
            value=s.read_weights,
            unit="bytes",
        ),
        Term(
            name="decode step (bandwidth bound)",
            value=s.step_memory,
            unit="s",
            formula=f"(weights read + KV for {c}) ÷ ({o.gpus} × {spec.bandwidth_gbs:,.0f} GB/s "
            f"× {o.bandwidth_efficiency:.0%})",
        ),
        Term(
            name="decode step (compute bound)",
            value=s.step_compute,
            unit="s",
            formula=f"{c} × (2·N + attention) FLOPs ÷ ({o.gpus} × {s.precision} peak × "
            f"{o.compute_efficiency:.0%})",
        ),
        Term(
            name="decode tokens/s per sequence",
            formula="1 ÷ slower step",
            value=1 / s.step,
            unit="tok/s",
        ),
        Term(
            name="decode tokens/s total",
            formula=f"{c} ÷ slower step",
            value=c / s.step,
            unit="tok/s",
            total=True,
        ),
        Term(
            name="prefill tokens/s",
            value=s.prefill_tps,
            unit="tok/s",
            total=True,
            formula=f"{o.gpus} × {s.precision} peak × {o.compute_efficiency:.0%} ÷ "
            f"(2·N + attention over {o.context:,}/2 tokens)",
        ),
        Term(
            name="time to first token",
            formula=f"{o.context:,} tokens ÷ prefill tokens/s",
            value=o.context / s.prefill_tps,
            unit="s",
        ),
    ]


def _serve_assumptions(
    model: ModelSpec, spec: GPUSpec, o: ServeOptions, m: _ServeMemory
) -> list[str]:
    assumptions = [
        f"the engine may use {o.memory_utilization:.0%} of GPU memory (vLLM's default)",
        f"decode reads weights and the full {o.context:,}-token KV cache of every sequence "
        f"each step at {o.bandwidth_efficiency:.0%} of peak bandwidth",
        f"prefill and compute-bound decode run at {o.compute_efficiency:.0%} of peak",
        "tensor parallelism splits weights, KV and bandwidth evenly; communication is ignored",
    ]
    if model.context_length and o.context > model.context_length:
        assumptions.append(
            f"context {o.context:,} exceeds {model.name}'s trained {model.context_length:,} tokens"
        )
    if m.workspace / o.gpus > 0.3 * spec.memory_bytes:
        assumptions.append("activation workspace is large: lower batched tokens")
    return assumptions


def serve_estimate(
    model: ModelSpec, gpu: str | GPUSpec, options: ServeOptions | None = None
) -> ServeEstimate:
    """Memory and speed of serving ``model`` on ``gpu`` (× ``options.gpus``, tensor parallel)."""
    o = options or ServeOptions()
    spec = get_gpu(gpu)
    mem = _serve_memory(model, spec, o)
    speed = _serve_speed(model, spec, o, mem)
    return ServeEstimate(
        model=model.name,
        gpu=spec.name,
        gpus=o.gpus,
        weights_bytes=mem.weights,
        kv_bytes_per_token=mem.kv_per_token,
        kv_bytes_per_sequence=mem.kv_per_sequence,
        kv_bytes_total=mem.kv_total,
        memory_needed_bytes=mem.needed,
        memory_available_bytes=mem.usable,
        fits=mem.needed <= mem.usable,
        max_concurrency=mem.max_concurrency,
        decode_tokens_per_s_per_sequence=1 / speed.step,
        decode_tokens_per_s_total=o.concurrency / speed.step,
        prefill_tokens_per_s=speed.prefill_tps,
        time_to_first_token_s=o.context / speed.prefill_tps,
        terms=_memory_terms(model, spec, o, mem) + _speed_terms(spec, o, speed),
        assumptions=_serve_assumptions(model, spec, o, mem),
    )
