"""Types of the compute planner: a transformer described by its architecture, and the named,
formula-carrying terms every estimate is built from.

Parameter counts are computed from the architecture (layers, widths, heads, experts), never looked
up, so the same code answers for a hand-written spec, a Hugging Face ``config.json`` or a GGUF file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# fmt: off
Unit = Literal["params", "FLOPs", "FLOP/s", "bytes", "s", "h", "days", "GPU-h", "GPU-days", "USD",
               "CNY", "tok/s", "seqs", "x", "tokens"]
# fmt: on


class Term(BaseModel):
    """One named line of an estimate: what it is, how it was computed, and its value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    formula: str
    value: float
    unit: Unit
    #: a sum or result of the lines above it, not an addend (shown in bold, never re-summed)
    total: bool = False


LinearGroup = Literal["attention", "mlp", "expert", "shared_expert"]


@dataclass(frozen=True)
class Linear:
    """One weight matrix kind inside a block: ``count`` copies of a ``d_in × d_out`` matrix."""

    name: str
    d_in: int
    d_out: int
    count: int = 1
    group: LinearGroup = "attention"

    @property
    def params(self) -> int:
        return self.d_in * self.d_out * self.count


class ModelSpec(BaseModel):
    """A decoder-only transformer, dense or mixture-of-experts, by its hyperparameters.

    ``ffn_size`` is the dense FFN width (``intermediate_size``); MoE layers use ``expert_ffn_size``.
    Multi-head latent attention (DeepSeek-V2/V3) is described by the ``*_lora_rank`` and
    ``qk_*_head_dim`` fields; leave them unset for ordinary multi-head / grouped-query attention.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    source: str = ""
    family: str = "llama"
    n_layers: int = Field(ge=1)
    hidden_size: int = Field(ge=1)
    n_heads: int = Field(ge=1)
    n_kv_heads: int | None = Field(default=None, ge=1)
    head_dim: int | None = Field(default=None, ge=1)
    ffn_size: int = Field(ge=1)
    vocab_size: int = Field(ge=1)
    tie_embeddings: bool = False
    gated_ffn: bool = True  # SwiGLU / GeGLU: gate, up and down matrices; False: up and down
    norm: Literal["rmsnorm", "layernorm"] = "rmsnorm"
    norms_per_layer: int = Field(default=2, ge=0)
    qk_norm: bool = False
    attn_bias: Literal["none", "qkv", "all"] = "none"
    mlp_bias: bool = False
    position: Literal["rope", "learned", "relative", "alibi", "none"] = "rope"
    context_length: int | None = Field(default=None, ge=1)
    sliding_window: int | None = Field(default=None, ge=1)
    sliding_layers: int | None = Field(default=None, ge=0)  # None: every layer, if a window is set
    # mixture of experts
    n_experts: int = Field(default=0, ge=0)
    experts_per_token: int = Field(default=0, ge=0)
    n_shared_experts: int = Field(default=0, ge=0)
    expert_ffn_size: int | None = Field(default=None, ge=1)
    shared_expert_ffn_size: int | None = Field(default=None, ge=1)
    first_dense_layers: int = Field(default=0, ge=0)
    # multi-head latent attention
    q_lora_rank: int | None = Field(default=None, ge=1)
    kv_lora_rank: int | None = Field(default=None, ge=1)
    qk_nope_head_dim: int | None = Field(default=None, ge=1)
    qk_rope_head_dim: int | None = Field(default=None, ge=1)
    v_head_dim: int | None = Field(default=None, ge=1)
    # what a weights file holds, when the spec was read from one (GGUF): for checks and sizing
    stored_params: int | None = None
    stored_bytes: int | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        if self.n_heads % self.kv_heads:
            raise ValueError(f"n_heads ({self.n_heads}) must be a multiple of n_kv_heads")
        if self.n_experts:
            if not 1 <= self.experts_per_token <= self.n_experts:
                raise ValueError("experts_per_token must be between 1 and n_experts")
            if self.first_dense_layers > self.n_layers:
                raise ValueError("first_dense_layers cannot exceed n_layers")
        elif self.experts_per_token or self.n_shared_experts:
            raise ValueError("experts_per_token / n_shared_experts need n_experts > 0")
        if self.is_mla and (self.qk_rope_head_dim is None or self.qk_nope_head_dim is None):
            raise ValueError("latent attention needs qk_nope_head_dim and qk_rope_head_dim")
        if self.position == "learned" and not self.context_length:
            raise ValueError("learned position embeddings need context_length")
        if self.sliding_layers is not None and self.sliding_layers > self.n_layers:
            raise ValueError("sliding_layers cannot exceed n_layers")
        return self

    # ---- derived shapes ---------------------------------------------------------------------
    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads or self.n_heads

    @property
    def head_size(self) -> int:
        return self.head_dim or self.hidden_size // self.n_heads

    @property
    def is_moe(self) -> bool:
        return self.n_experts > 0

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank is not None

    @property
    def q_dim(self) -> int:
        """Width of the query projection (heads × query head size)."""
        if self.is_mla:
            return self.n_heads * ((self.qk_nope_head_dim or 0) + (self.qk_rope_head_dim or 0))
        return self.n_heads * self.head_size

    @property
    def kv_dim(self) -> int:
        """Width of the key (and of the value) projection."""
        return self.kv_heads * self.head_size

    @property
    def v_dim(self) -> int:
        return self.n_heads * (self.v_head_dim or self.head_size) if self.is_mla else self.kv_dim

    @property
    def moe_layers(self) -> int:
        return self.n_layers - self.first_dense_layers if self.is_moe else 0

    @property
    def dense_layers(self) -> int:
        return self.n_layers - self.moe_layers

    @property
    def n_sliding_layers(self) -> int:
        if self.sliding_window is None:
            return 0
        return self.n_layers if self.sliding_layers is None else self.sliding_layers

    def linears(self) -> list[Linear]:
        """The weight matrices of one layer of each kind (experts counted by ``count``)."""
        h = self.hidden_size
        if self.is_mla:
            qk = (self.qk_nope_head_dim or 0) + (self.qk_rope_head_dim or 0)
            v = self.v_head_dim or self.head_size
            kv_rank = self.kv_lora_rank or 0
            attn = []
            if self.q_lora_rank:
                attn += [
                    Linear("q_a_proj", h, self.q_lora_rank),
                    Linear("q_b_proj", self.q_lora_rank, self.n_heads * qk),
                ]
            else:
                attn.append(Linear("q_proj", h, self.n_heads * qk))
            attn += [
                Linear("kv_a_proj_with_mqa", h, kv_rank + (self.qk_rope_head_dim or 0)),
                Linear("kv_b_proj", kv_rank, self.n_heads * ((self.qk_nope_head_dim or 0) + v)),
                Linear("o_proj", self.n_heads * v, h),
            ]
        else:
            attn = [
                Linear("q_proj", h, self.q_dim),
                Linear("k_proj", h, self.kv_dim),
                Linear("v_proj", h, self.kv_dim),
                Linear("o_proj", self.q_dim, h),
            ]
        return attn

    def ffn_linears(self, width: int, count: int = 1, group: LinearGroup = "mlp") -> list[Linear]:
        """The matrices of one feed-forward block (``count`` copies, e.g. one per expert)."""
        h = self.hidden_size
        names = (
            ("gate_proj", "up_proj", "down_proj") if self.gated_ffn else ("up_proj", "down_proj")
        )
        shapes = {"gate_proj": (h, width), "up_proj": (h, width), "down_proj": (width, h)}
        return [Linear(n, *shapes[n], count=count, group=group) for n in names]

    # ---- parameter counts -------------------------------------------------------------------
    @property
    def _norm_width(self) -> int:
        return 2 if self.norm == "layernorm" else 1

    def attention_params(self) -> int:
        """Parameters of one attention block (projections, biases, q/k norms, latent norms)."""
        n = sum(lin.params for lin in self.linears())
        if self.attn_bias in ("qkv", "all"):
            n += self.q_dim + 2 * self.kv_dim
        if self.attn_bias == "all":
            n += self.hidden_size
        if self.qk_norm:
            n += 2 * self.head_size * self._norm_width
        if self.is_mla:
            n += (self.q_lora_rank or 0) + (self.kv_lora_rank or 0)  # latent RMSNorms
        if (
            self.position == "relative"
        ):  # Transformer-XL: a d×d projection of the relative encodings
            n += self.hidden_size * self.hidden_size
        return n

    def ffn_params(self, width: int) -> int:
        n = sum(lin.params for lin in self.ffn_linears(width))
        if self.mlp_bias:
            n += (2 if self.gated_ffn else 1) * width + self.hidden_size
        return n

    @property
    def expert_width(self) -> int:
        return self.expert_ffn_size or self.ffn_size

    @property
    def shared_width(self) -> int:
        return self.shared_expert_ffn_size or self.expert_width

    def moe_params(self, active: bool) -> int:
        """Parameters of one MoE feed-forward block: router, routed and shared experts."""
        routed = self.experts_per_token if active else self.n_experts
        return (
            self.hidden_size * self.n_experts
            + routed * self.ffn_params(self.expert_width)
            + self.n_shared_experts * self.ffn_params(self.shared_width)
        )

    @property
    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def position_params(self) -> int:
        return (self.context_length or 0) * self.hidden_size if self.position == "learned" else 0

    @property
    def lm_head_params(self) -> int:
        return 0 if self.tie_embeddings else self.vocab_size * self.hidden_size

    @property
    def norm_params_per_layer(self) -> int:
        return self.norms_per_layer * self.hidden_size * self._norm_width

    def param_terms(self, active: bool = False) -> list[Term]:
        """The parameter count as a breakdown; the last term is the total."""
        h, L = self.hidden_size, self.n_layers
        kind = "active" if active else "total"
        terms: list[Term] = []

        def add(name: str, value: int, formula: str) -> None:
            terms.append(Term(name=name, value=value, unit="params", formula=formula))

        add("token embeddings", self.embedding_params, f"vocab {self.vocab_size:,} × hidden {h:,}")
        if self.position_params:
            add(
                "position embeddings",
                self.position_params,
                f"context {self.context_length:,} × {h:,}",
            )
        shape = (
            f"latent attention (q rank {self.q_lora_rank}, kv rank {self.kv_lora_rank})"
            if self.is_mla
            else f"q {self.q_dim:,} + k,v 2×{self.kv_dim:,} ({self.n_heads} heads, "
            f"{self.kv_heads} KV heads, head dim {self.head_size})"
        )
        attn = self.attention_params()
        add("attention", L * attn, f"{L} layers × {attn:,} [{shape}]")
        if self.dense_layers:
            mats = "3" if self.gated_ffn else "2"
            add(
                "dense FFN",
                self.dense_layers * self.ffn_params(self.ffn_size),
                f"{self.dense_layers} layers × {mats}·{h:,}·{self.ffn_size:,}",
            )
        if self.moe_layers:
            routed = self.experts_per_token if active else self.n_experts
            shared = f" + {self.n_shared_experts} shared" if self.n_shared_experts else ""
            add(
                f"MoE FFN ({kind})",
                self.moe_layers * self.moe_params(active),
                f"{self.moe_layers} layers × ({routed} of {self.n_experts} experts × "
                f"3·{h:,}·{self.expert_width:,}{shared} + router)",
            )
        bias = " × 2 (LayerNorm has a bias)" if self.norm == "layernorm" else ""
        add(
            "norms",
            L * self.norm_params_per_layer + h * self._norm_width,
            f"({L} × {self.norms_per_layer} + 1) × {h:,}{bias}",
        )
        if self.lm_head_params:
            add("LM head (untied)", self.lm_head_params, f"vocab {self.vocab_size:,} × {h:,}")
        total = sum(t.value for t in terms)
        terms.append(
            Term(
                name=f"{kind} parameters",
                formula="sum of the above",
                value=total,
                unit="params",
                total=True,
            )
        )
        return terms

    def _count(self, active: bool) -> int:
        L, h = self.n_layers, self.hidden_size
        return (
            self.embedding_params
            + self.position_params
            + L * (self.attention_params() + self.norm_params_per_layer)
            + self.dense_layers * self.ffn_params(self.ffn_size)
            + self.moe_layers * self.moe_params(active)
            + h * self._norm_width
            + self.lm_head_params
        )

    @property
    def total_params(self) -> int:
        return self._count(active=False)

    @property
    def active_params(self) -> int:
        """Parameters used per token (equal to the total for a dense model)."""
        return self._count(active=True)

    @property
    def flops_params(self) -> int:
        """Active parameters that take part in matrix multiplies: the ``N`` of ``6·N·D``.

        The input embedding is a table lookup (no FLOPs); a tied embedding still counts once, as
        the LM head.
        """
        lookup = self.position_params + (0 if self.tie_embeddings else self.embedding_params)
        return self.active_params - lookup

    @property
    def quantizable_params(self) -> int:
        """Parameters in the blocks' linear layers (what 4-bit QLoRA / AWQ / GPTQ quantize)."""
        mats = sum(lin.params for lin in self.linears()) * self.n_layers
        mats += self.dense_layers * sum(lin.params for lin in self.ffn_linears(self.ffn_size))
        if self.moe_layers:
            per = self.n_experts * self.ffn_params(self.expert_width)
            per += self.n_shared_experts * self.ffn_params(self.shared_width)
            mats += self.moe_layers * per
        return mats

    # ---- KV cache ---------------------------------------------------------------------------
    @property
    def kv_elements_per_token_per_layer(self) -> int:
        """Cached elements per token per layer: K and V, or the compressed latent for MLA."""
        if self.is_mla:
            return (self.kv_lora_rank or 0) + (self.qk_rope_head_dim or 0)
        return 2 * self.kv_dim

    def attended_tokens(self, context: int) -> int:
        """Σ over layers of the tokens each layer attends to / caches at this context length."""
        sliding = self.n_sliding_layers
        window = min(context, self.sliding_window or context)
        return (self.n_layers - sliding) * context + sliding * window
