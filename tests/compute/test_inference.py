"""Serving estimates: KV cache (exact, against the published figures), weights, fit, speed."""

from __future__ import annotations

import pytest

from hanlin.compute import (
    KNOWN_MODELS,
    ServeOptions,
    kv_cache_bytes_per_token,
    serve_estimate,
    weight_bytes,
)
from hanlin.errors import InvalidInputError


def test_kv_cache_per_token_matches_published_figures_exactly() -> None:
    # vLLM paper (Kwon et al. 2023, §3): OPT-13B, 2 × 5120 × 40 layers × 2 bytes = 800 KB/token
    assert kv_cache_bytes_per_token(KNOWN_MODELS["opt-13b"])[0] == 800 * 1024
    # Llama-2-70B: GQA with 8 KV heads of 128, 80 layers, fp16: 320 KiB/token
    assert kv_cache_bytes_per_token(KNOWN_MODELS["llama2-70b"])[0] == 320 * 1024
    # Llama-3-8B: 8 KV heads of 128, 32 layers, fp16: 128 KiB/token
    assert kv_cache_bytes_per_token(KNOWN_MODELS["llama3-8b"])[0] == 128 * 1024


def test_kv_cache_formula_is_shown() -> None:
    value, formula = kv_cache_bytes_per_token(KNOWN_MODELS["llama2-70b"])
    assert formula == "2 × 80 layers × 8 KV heads × 128 head dim × 2 B"
    assert kv_cache_bytes_per_token(KNOWN_MODELS["llama2-70b"], "fp8")[0] == value / 2


def test_latent_attention_caches_the_compressed_vector() -> None:
    # DeepSeek-V3: (kv_lora_rank 512 + rope 64) × 61 layers × 2 B = 70,272 B/token — ~7 % of
    # what 128 full K/V heads of 128/192 would take
    assert kv_cache_bytes_per_token(KNOWN_MODELS["deepseek-v3"])[0] == 61 * 576 * 2


def test_sliding_window_layers_cap_the_cache() -> None:
    gemma = KNOWN_MODELS["gemma3-270m"]
    est = serve_estimate(gemma, "RTX-4090", ServeOptions(context=32768))
    per_token = 18 * 2 * 256 * 2
    # 3 global layers keep 32k tokens, 15 local layers keep 512
    assert est.kv_bytes_per_sequence == (3 * 32768 + 15 * 512) * per_token / 18


def test_opt13b_weights_match_the_vllm_paper() -> None:
    """Kwon et al. 2023, Fig. 1: a 13B model's parameters take 26 GB of an A100-40GB."""
    assert weight_bytes(KNOWN_MODELS["opt-13b"], "fp16")[0] == pytest.approx(26e9, rel=0.02)


def test_quantization_shrinks_weights_in_order() -> None:
    llama = KNOWN_MODELS["llama3-8b"]
    for chain in (("bf16", "fp8", "int4"), ("bf16", "q8_0", "q6_k", "q4_k_m", "q2_k")):
        sizes = [weight_bytes(llama, q)[0] for q in chain]
        assert sizes == sorted(sizes, reverse=True), chain
    # AWQ/GPTQ keep the 1B embedding + LM-head parameters of Llama-3-8B in 16 bit: 5.7 GB,
    # larger than a Q4_K_M file, as the published AWQ checkpoints are
    assert weight_bytes(llama, "int4")[0] > weight_bytes(llama, "q4_k_m")[0]
    # llama-quantize's reference: Llama-3-8B Q4_K_M is 4.58 GiB
    assert weight_bytes(llama, "q4_k_m")[0] / 2**30 == pytest.approx(4.58, rel=1e-3)


def test_llama3_70b_int8_on_h20_the_issue_example() -> None:
    est = serve_estimate(
        KNOWN_MODELS["llama3-70b"],
        "H20",
        ServeOptions(context=32 * 1024, concurrency=64, quant="int8"),
    )
    # 64 × 32k tokens × 320 KiB = 640 GiB of KV cache: nowhere near one 96 GB card
    assert est.kv_bytes_total == 64 * 32768 * 320 * 1024
    assert est.fits is False and est.max_concurrency == 1
    eight = serve_estimate(
        KNOWN_MODELS["llama3-70b"],
        "H20",
        ServeOptions(context=32 * 1024, concurrency=56, quant="int8", gpus=8, kv_dtype="fp8"),
    )
    assert eight.fits is True and eight.max_concurrency >= 56


def test_decode_is_bandwidth_bound_at_batch_one() -> None:
    llama = KNOWN_MODELS["llama2-7b"]
    est = serve_estimate(llama, "A100-80G", ServeOptions(context=2048, bandwidth_efficiency=1.0))
    read = llama.total_params * 2 + 2048 * 512 * 1024  # weights + one sequence's KV
    assert est.decode_tokens_per_s_per_sequence == pytest.approx(2039e9 / read, rel=1e-6)
    h100 = serve_estimate(llama, "H100", ServeOptions(context=2048, bandwidth_efficiency=1.0))
    assert h100.decode_tokens_per_s_per_sequence / est.decode_tokens_per_s_per_sequence == (
        pytest.approx(3350 / 2039, rel=1e-6)
    )


def test_h20_decodes_faster_but_prefills_slower_than_h100() -> None:
    llama = KNOWN_MODELS["llama3-8b"]
    h20 = serve_estimate(llama, "H20", ServeOptions(context=8192))
    h100 = serve_estimate(llama, "H100", ServeOptions(context=8192))
    assert h20.decode_tokens_per_s_per_sequence > h100.decode_tokens_per_s_per_sequence
    assert h20.prefill_tokens_per_s < h100.prefill_tokens_per_s / 5


def test_moe_decode_reads_only_touched_experts() -> None:
    mixtral = KNOWN_MODELS["mixtral-8x7b"]
    one = serve_estimate(mixtral, "H100", ServeOptions(context=1024, concurrency=1))
    read_one = next(t.value for t in one.terms if t.name == "weights read per decode step")
    assert read_one == pytest.approx(mixtral.active_params * 2, rel=0.001)
    many = serve_estimate(mixtral, "H100", ServeOptions(context=1024, concurrency=64))
    read_many = next(t.value for t in many.terms if t.name == "weights read per decode step")
    assert read_many == pytest.approx(mixtral.total_params * 2, rel=0.001)  # all 8 experts hit


def test_gguf_size_needs_a_gguf_model_and_unknown_precisions_are_named() -> None:
    with pytest.raises(InvalidInputError, match=r"needs a model read from a \.gguf"):
        weight_bytes(KNOWN_MODELS["llama3-8b"], "file")
    with pytest.raises(InvalidInputError, match="unknown weight precision") as info:
        weight_bytes(KNOWN_MODELS["llama3-8b"], "int3")
    assert "q4_k_m" in (info.value.hint or "")
    with pytest.raises(InvalidInputError, match="KV-cache dtype"):
        kv_cache_bytes_per_token(KNOWN_MODELS["llama3-8b"], "fp4")
