"""GPU memory per device for training and fine-tuning: model states, activations, overheads.

Model states follow the ZeRO paper (Rajbhandari et al. 2020): mixed-precision AdamW keeps
2 + 2 + 12 bytes per trained parameter, sharded over data-parallel ranks by ZeRO stage. Activations
are counted tensor by tensor for a pre-norm transformer with a fused (flash) attention kernel, in
the spirit of Korthikanti et al. 2022. Two terms that static tables leave out are explicit: the
CUDA context (plus NCCL buffers with several GPUs) and the caching allocator's fragmentation.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from hanlin.compute.architecture import ModelSpec, Term
from hanlin.compute.gpus import GPUSpec, get_gpu
from hanlin.errors import InvalidInputError

Precision = Literal["bf16-mixed", "bf16", "fp32"]
Optimizer = Literal["adamw", "adamw-8bit", "sgd"]
LoraTargets = Literal["all-linear", "attention", "qv"]

# (weights, gradients, optimizer states) in bytes per *trained* parameter
_STATE_BYTES: dict[Precision, dict[Optimizer, tuple[float, float, float]]] = {
    # bf16 weights and grads + fp32 master copy inside the optimizer state (ZeRO paper, K = 12)
    "bf16-mixed": {"adamw": (2, 2, 12), "adamw-8bit": (2, 2, 6), "sgd": (2, 2, 8)},
    "bf16": {"adamw": (2, 2, 4), "adamw-8bit": (2, 2, 2), "sgd": (2, 2, 2)},
    "fp32": {"adamw": (4, 4, 8), "adamw-8bit": (4, 4, 2), "sgd": (4, 4, 4)},
}
_OPT_TEXT = {
    "adamw": "AdamW m, v",
    "adamw-8bit": "8-bit AdamW m, v (1 byte each)",
    "sgd": "SGD momentum",
}
# which matrices each LoRA target preset adapts (None: every linear layer but the LM head)
_TARGETS: dict[str, frozenset[str] | None] = {
    "all-linear": None,
    "attention": frozenset(
        {
            "q_proj",
            "k_proj",
            "v_proj",
            "o_proj",
            "q_a_proj",
            "q_b_proj",
            "kv_a_proj_with_mqa",
            "kv_b_proj",
        }
    ),
    "qv": frozenset({"q_proj", "v_proj", "q_b_proj", "kv_b_proj"}),
}
NF4_BYTES = 0.5 + 4 / 64  # 4-bit codes + an fp32 absmax per 64-weight block (QLoRA)
NF4_DQ_BYTES = 0.5 + 1 / 64 + 4 / (64 * 256)  # double quantization: 8-bit absmax, fp32 per 256


class TrainMemoryOptions(BaseModel):
    """How the model is trained. Defaults describe a common single-node fine-tuning setup."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["full", "lora", "qlora"] = "full"
    precision: Precision = "bf16-mixed"
    optimizer: Optimizer = "adamw"
    seq_len: int = Field(default=2048, ge=1)
    micro_batch: int = Field(default=1, ge=1)
    grad_checkpointing: bool = True
    attention: Literal["flash", "eager"] = "flash"
    gpus: int = Field(default=1, ge=1)
    tp: int = Field(default=1, ge=1)
    pp: int = Field(default=1, ge=1)
    zero: Literal[0, 1, 2, 3] = 0
    lora_rank: int = Field(default=16, ge=1)
    lora_targets: LoraTargets = "all-linear"
    lora_dropout: bool = False
    double_quant: bool = True
    #: logits upcast to fp32 for the loss (Hugging Face models do); False for bf16 losses
    fp32_loss: bool = True
    cuda_context_gib: float = Field(default=0.75, ge=0)
    nccl_gib: float = Field(default=0.5, ge=0)
    fragmentation: float = Field(default=0.10, ge=0, le=1)


class MemoryEstimate(BaseModel):
    """Memory per GPU.

    ``allocated_bytes`` is what ``torch.cuda.max_memory_allocated`` reports; ``total_bytes`` adds
    the CUDA context and allocator fragmentation (what ``nvidia-smi`` shows).
    """

    model_config = ConfigDict(extra="forbid")

    model: str
    gpu: str | None
    gpu_memory_bytes: float | None
    trainable_params: int
    allocated_bytes: float
    total_bytes: float
    fits: bool | None
    terms: list[Term]
    assumptions: list[str] = Field(default_factory=list)


def lora_params(model: ModelSpec, rank: int, targets: LoraTargets = "all-linear") -> int:
    """Adapter parameters: ``r · (d_in + d_out)`` per adapted matrix (every expert included)."""
    wanted = _TARGETS[targets]
    per_layer_attn = [lin for lin in model.linears() if wanted is None or lin.name in wanted]
    n = model.n_layers * sum(rank * (lin.d_in + lin.d_out) * lin.count for lin in per_layer_attn)
    if wanted is None:
        dense = model.ffn_linears(model.ffn_size)
        n += model.dense_layers * sum(rank * (lin.d_in + lin.d_out) for lin in dense)
        if model.moe_layers:
            ex = model.ffn_linears(model.expert_width, model.n_experts, "expert")
            ex += model.ffn_linears(model.shared_width, model.n_shared_experts, "shared_expert")
            n += model.moe_layers * sum(rank * (lin.d_in + lin.d_out) * lin.count for lin in ex)
    return n


def model_state_terms(
    params: float, *, precision: Precision, optimizer: Optimizer, zero: int, dp: int, mp: int = 1
) -> list[Term]:
    """Weights, gradients and optimizer states per GPU for ``params`` trained parameters.

    ``mp`` = tensor × pipeline parallel degree (splits everything); ``dp`` = data-parallel ranks
    that ZeRO-1/2/3 shard optimizer states / gradients / weights over.
    """
    w, g, o = _STATE_BYTES[precision][optimizer]
    shard = {"weights": zero >= 3, "gradients": zero >= 2, "optimizer": zero >= 1}
    master = " incl. fp32 master weights" if precision == "bf16-mixed" else ""
    out = []
    for name, per, what in (
        ("weights", w, "weights"),
        ("gradients", g, "gradients"),
        ("optimizer states", o, _OPT_TEXT[optimizer] + master),
    ):
        div = mp * (dp if shard[name.split()[0]] else 1)
        formula = f"{params:,.0f} × {per:g} B ({what})"
        formula += f" ÷ {div}" if div > 1 else ""
        out.append(Term(name=name, formula=formula, value=params * per / div, unit="bytes"))
    return out


def activation_bytes_per_token(
    model: ModelSpec, seq_len: int, attention: str = "flash"
) -> tuple[float, float]:
    """(all layers, largest layer) activation bytes kept per token for the backward pass.

    Per layer, bf16 unless noted: the norm input in fp32 (4h) and output (2h) twice; Q, K, V as
    the attention kernel keeps them; the attention output and the output-projection input; the
    FFN's gate, activation, up and product (gated) or up and activation (GELU) tensors.
    Eager attention adds the fp32 softmax and its bf16 copy: 6 bytes per head per attended token.
    """
    h = model.hidden_size
    if model.is_mla:
        k_el, v_el = model.q_dim, model.v_dim
        latent = 2 * ((model.q_lora_rank or 0) + (model.kv_lora_rank or 0))
    else:
        k_el = v_el = model.kv_dim
        latent = 0
    o_in = model.v_dim if model.is_mla else model.q_dim
    norms = max(model.norms_per_layer, 2) * 6 * h
    attn: float = 2 * (model.q_dim + k_el + v_el) + 4 * o_in + latent
    if attention == "eager":
        attn += 6 * model.n_heads * model.attended_tokens(seq_len) / model.n_layers
    per_width = 8 if model.gated_ffn else 4
    dense = norms + attn + per_width * model.ffn_size
    moe = norms + attn
    if model.moe_layers:
        moe += model.experts_per_token * per_width * model.expert_width
        moe += model.n_shared_experts * per_width * model.shared_width
        moe += 4 * model.n_experts + 4 * h * model.experts_per_token  # router, token permutes
    total = model.dense_layers * dense + model.moe_layers * moe
    return total, max(dense if model.dense_layers else 0, moe if model.moe_layers else 0)


def training_memory(
    model: ModelSpec, options: TrainMemoryOptions | None = None, gpu: str | GPUSpec | None = None
) -> MemoryEstimate:
    """Peak memory per GPU (the start of the backward pass, optimizer states resident)."""
    o = options or TrainMemoryOptions()
    mp = o.tp * o.pp
    if o.gpus % mp:
        raise InvalidInputError(f"--gpus {o.gpus} is not a multiple of tp × pp = {mp}")
    if model.n_heads % o.tp or model.n_layers < o.pp:
        raise InvalidInputError(
            f"tp {o.tp} must divide the {model.n_heads} heads, "
            f"and pp {o.pp} cannot exceed the {model.n_layers} layers"
        )
    dp = o.gpus // mp
    if o.zero and dp == 1:
        zero_note = "ZeRO has nothing to shard over with one data-parallel rank"
    else:
        zero_note = ""
    spec = get_gpu(gpu) if gpu is not None else None
    trainable, terms = _state_terms(model, o, dp=dp, mp=mp)
    if o.zero >= 3 and dp > 1:
        layer = model.attention_params() + max(
            model.ffn_params(model.ffn_size), model.moe_params(False) if model.is_moe else 0
        )
        terms.append(
            Term(
                name="ZeRO-3 gathered layers",
                unit="bytes",
                value=2 * layer * 2 / o.tp,
                formula=f"2 layers in flight × {layer:,} params × 2 B",
            )
        )
    terms += _activation_terms(model, o)
    if o.method == "qlora":
        big = max(
            lin.d_in * lin.d_out for lin in model.linears() + model.ffn_linears(model.ffn_size)
        )
        terms.append(
            Term(
                name="dequantized weight buffer",
                value=2 * big * 2,
                unit="bytes",
                formula=f"2 × largest matrix {big:,} × 2 B (bf16 during matmul)",
            )
        )
    allocated = sum(t.value for t in terms)
    terms.append(
        Term(
            name="allocated (tensors)",
            formula="sum of the above; what torch.cuda.max_memory_allocated reports",
            value=allocated,
            unit="bytes",
            total=True,
        )
    )
    frag = allocated * o.fragmentation
    overhead = [
        Term(
            name="allocator fragmentation",
            value=frag,
            unit="bytes",
            formula=f"{o.fragmentation:.0%} of allocated (caching allocator reserve)",
        ),
        Term(
            name="CUDA context + kernels",
            value=o.cuda_context_gib * 2**30,
            unit="bytes",
            formula=f"{o.cuda_context_gib:g} GiB per process (driver, cuBLAS, kernels)",
        ),
    ]
    if o.gpus > 1:
        overhead.append(
            Term(
                name="NCCL buffers",
                value=o.nccl_gib * 2**30,
                unit="bytes",
                formula=f"{o.nccl_gib:g} GiB with several GPUs",
            )
        )
    total = allocated + sum(t.value for t in overhead)
    terms += overhead
    terms.append(
        Term(
            name="total per GPU",
            formula="allocated + overheads (≈ nvidia-smi)",
            value=total,
            unit="bytes",
            total=True,
        )
    )
    assumptions = [
        "activations: pre-norm transformer, fused attention kernel unless attention='eager', "
        "bf16 tensors, norm inputs kept in fp32; linear-layer inputs counted even when frozen",
        f"peak at the start of backward with {o.micro_batch} × {o.seq_len:,} tokens resident",
        "tensor parallelism with sequence parallelism (activations ÷ tp); pipeline stage 0 "
        "holds pp micro-batches in flight (1F1B), so pp does not shrink activations",
    ]
    if zero_note:
        assumptions.append(zero_note)
    fits = None if spec is None else total <= spec.memory_bytes
    return MemoryEstimate(
        model=model.name,
        gpu=spec.name if spec else None,
        gpu_memory_bytes=spec.memory_bytes if spec else None,
        trainable_params=trainable,
        allocated_bytes=allocated,
        total_bytes=total,
        fits=fits,
        terms=terms,
        assumptions=assumptions,
    )


def _state_terms(
    model: ModelSpec, o: TrainMemoryOptions, *, dp: int, mp: int
) -> tuple[int, list[Term]]:
    """Trained parameter count, and weights / gradients / optimizer terms per GPU."""
    terms: list[Term] = []
    n_total = model.total_params
    if o.method == "full":
        trainable = n_total
        terms += model_state_terms(
            trainable, precision=o.precision, optimizer=o.optimizer, zero=o.zero, dp=dp, mp=mp
        )
    else:
        trainable = lora_params(model, o.lora_rank, o.lora_targets)
        base = 4 if o.precision == "fp32" else 2
        div = mp * (dp if o.zero >= 3 else 1)
        if o.method == "qlora":
            q = model.quantizable_params
            nf4 = NF4_DQ_BYTES if o.double_quant else NF4_BYTES
            label = "NF4 + double-quantized scales" if o.double_quant else "NF4 + fp32 scales"
            value = (q * nf4 + (n_total - q) * 2) / div
            formula = f"{q:,} linear × {nf4:.4f} B ({label}) + {n_total - q:,} other × 2 B"
        else:
            value = n_total * base / div
            formula = f"{n_total:,} × {base} B (frozen)"
        formula += f" ÷ {div}" if div > 1 else ""
        terms.append(Term(name="base weights (frozen)", formula=formula, value=value, unit="bytes"))
        adapter_precision: Precision = "bf16" if o.precision == "bf16" else "fp32"
        for t in model_state_terms(
            trainable, precision=adapter_precision, optimizer=o.optimizer, zero=o.zero, dp=dp, mp=mp
        ):
            terms.append(
                t.model_copy(
                    update={
                        "name": f"adapter {t.name}",
                        "formula": t.formula + f" [rank {o.lora_rank}, {o.lora_targets}]",
                    }
                )
            )
    return trainable, terms


def _activation_terms(model: ModelSpec, o: TrainMemoryOptions) -> list[Term]:
    tokens = o.seq_len * o.micro_batch
    all_layers, one_layer = activation_bytes_per_token(model, o.seq_len, o.attention)
    h, tp = model.hidden_size, o.tp
    out = []
    if o.grad_checkpointing:
        ckpt = model.n_layers * 2 * h * tokens / tp
        out.append(
            Term(
                name="checkpointed layer inputs",
                value=ckpt,
                unit="bytes",
                formula=f"{model.n_layers} layers × 2 B × hidden {h:,} × {tokens:,} tokens"
                + (f" ÷ tp {tp}" if tp > 1 else ""),
            )
        )
        out.append(
            Term(
                name="recomputed layer activations",
                value=one_layer * tokens / tp,
                unit="bytes",
                formula=f"{one_layer:,.0f} B/token (one layer) × {tokens:,} tokens",
            )
        )
    else:
        out.append(
            Term(
                name="activations",
                value=all_layers * tokens / tp,
                unit="bytes",
                formula=f"{all_layers / model.n_layers:,.0f} B/token/layer × "
                f"{model.n_layers} layers × {tokens:,} tokens" + (f" ÷ tp {tp}" if tp > 1 else ""),
            )
        )
    if o.method != "full" and o.lora_dropout:
        ins = _adapted_inputs(model, o.lora_targets)
        layers = 1 if o.grad_checkpointing else model.n_layers
        out.append(
            Term(
                name="LoRA dropout",
                value=3 * ins * layers * tokens / tp,
                unit="bytes",
                formula=f"(1 B mask + 2 B input) × {ins:,} adapted inputs/layer × "
                f"{layers} layers × {tokens:,} tokens",
            )
        )
    per_logit = 16 if o.fp32_loss else 8
    what = (
        "bf16 logits, fp32 copy, fp32 log-softmax, fp32 + bf16 gradient"
        if o.fp32_loss
        else "bf16 logits, log-softmax and gradients"
    )
    out.append(
        Term(
            name="logits and loss",
            value=per_logit * model.vocab_size * tokens / tp,
            unit="bytes",
            formula=f"{per_logit} B ({what}) × vocab {model.vocab_size:,} × {tokens:,} tokens",
        )
    )
    return out


def _adapted_inputs(model: ModelSpec, targets: LoraTargets) -> int:
    """Σ of the input widths of the matrices adapted in one layer, per token.

    With dropout each adapter keeps its own dropped-out copy of its input (as PEFT does).
    """
    wanted = _TARGETS[targets]
    n = sum(lin.d_in for lin in model.linears() if wanted is None or lin.name in wanted)
    if wanted is None:
        ffn = model.ffn_linears(model.expert_width if model.is_moe else model.ffn_size)
        n += (model.experts_per_token if model.is_moe else 1) * sum(lin.d_in for lin in ffn)
    return n
