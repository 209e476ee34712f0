"""Training compute against published runs (the issue's validation list)."""

from __future__ import annotations

import pytest

from hanlin.compute import KNOWN_MODELS, implied_mfu, training_flops, training_time
from hanlin.errors import InvalidInputError, NotFoundError

GPT3 = KNOWN_MODELS["gpt3-175b"]


def test_gpt3_training_flops_match_brown_et_al() -> None:
    """Brown et al. 2020, Table D.1: GPT-3 175B, 300B tokens, 3.14e23 FLOPs total."""
    flops = training_flops(GPT3, 300 * 10**9).flops
    assert abs(flops / 3.14e23 - 1) < 0.02


def test_gpt3_on_1024_a100_matches_narayanan_et_al() -> None:
    """Narayanan et al. 2021 ('Efficient Large-Scale Language Model Training on GPU Clusters
    Using Megatron-LM', §5.1): 8·T·P / (n·X) — 175B on 300B tokens, 1,024 A100s at 140 TFLOP/s
    each with recomputation ≈ 34 days; ≈ 34,800 A100-days (the reports' "35,000 A100-days")."""
    est = training_time(GPT3, 300 * 10**9, "A100-80G", 1024, achieved_tflops=140, recompute=True)
    days = est.seconds / 86400
    assert abs(days / 34 - 1) < 0.05
    assert abs(est.gpu_days / 34_800 - 1) < 0.05
    assert est.mfu == pytest.approx(140 / 312)
    names = [t.name for t in est.terms]
    assert "dense FLOPs" in names and "A100-80G GPU-days" in names


def test_llama2_70b_implied_mfu_from_model_card() -> None:
    """Llama 2 model card: 70B trained on 2T tokens in 1,720,320 A100-80GB GPU-hours.

    With the nominal 70B, 6·N·D gives the quoted ≈ 43–44 %. The architecture's true matmul
    parameter count is 68.7B (68.98B in total, less the 0.26B embedding lookup), which gives 42.7 %.
    """
    nominal = implied_mfu(70e9, 2 * 10**12, 1_720_320, "A100-80G")
    assert 0.43 <= nominal <= 0.44
    computed = implied_mfu(KNOWN_MODELS["llama2-70b"], 2 * 10**12, 1_720_320, "A100-80G")
    assert 0.42 <= computed <= 0.44
    assert computed == pytest.approx(nominal * 68.71 / 70, rel=0.001)


def test_chinchilla_flops() -> None:
    """Hoffmann et al. 2022, Table 3: Chinchilla 70B on 1.4T tokens, 5.76e23 FLOPs (the paper
    counts attention and embeddings its own way); 6·N·D ≈ 5.9e23 — within 3 %."""
    flops = training_flops(KNOWN_MODELS["chinchilla-70b"], 1_400 * 10**9).flops
    assert flops == pytest.approx(5.9e23, rel=0.01)
    assert abs(flops / 5.76e23 - 1) < 0.03


def test_moe_uses_active_parameters() -> None:
    mixtral = KNOWN_MODELS["mixtral-8x7b"]
    flops = training_flops(mixtral, 10**12).flops
    assert flops == pytest.approx(6 * mixtral.flops_params * 10**12)
    assert flops < 6 * 0.3 * mixtral.total_params * 10**12  # active is ~27% of total


def test_options_change_the_count_the_way_they_should() -> None:
    llama = KNOWN_MODELS["llama2-70b"]
    base = training_flops(llama, 10**12).flops
    assert training_flops(llama, 10**12, recompute=True).flops == pytest.approx(base * 8 / 6)
    # PaLM's attention term at 4k context: 12·L·d·T / 6N ≈ 7.8 % on top for Llama-2-70B
    with_attn = training_flops(llama, 10**12, attention=True, seq_len=4096).flops
    assert with_attn / base == pytest.approx(1 + 12 * 80 * 8192 * 4096 / (6 * llama.flops_params))
    # LoRA: no weight gradients for the frozen base, 4·N·D
    assert training_flops(llama, 10**12, method="lora").flops == pytest.approx(base * 4 / 6)


def test_cost_in_both_currencies() -> None:
    est = training_time(
        GPT3,
        300 * 10**9,
        "A100-80G",
        1024,
        mfu=0.34,
        price_per_gpu_hour=10.0,
        currency="CNY",
        usd_cny=7.0,
    )
    assert est.cost_cny == pytest.approx(est.gpu_hours * 10.0)
    assert est.cost_usd == pytest.approx(est.gpu_hours * 10.0 / 7.0)


def test_more_gpus_shorter_time_same_gpu_days() -> None:
    a = training_time(GPT3, 300 * 10**9, "H100", 1024, mfu=0.4)
    b = training_time(GPT3, 300 * 10**9, "H100", 2048, mfu=0.4)
    assert b.seconds == pytest.approx(a.seconds / 2)
    assert b.gpu_days == pytest.approx(a.gpu_days)


def test_bad_inputs_are_refused_with_a_reason() -> None:
    with pytest.raises(InvalidInputError, match="at least 1"):
        training_time(GPT3, 10**9, "A100-80G", -8, mfu=0.4)
    with pytest.raises(InvalidInputError, match=r"MFU must be in \(0, 1\]"):
        training_time(GPT3, 10**9, "A100-80G", 8, mfu=1.7)
    with pytest.raises(InvalidInputError, match="exactly one"):
        training_time(GPT3, 10**9, "A100-80G", 8, mfu=0.4, achieved_tflops=100)
    with pytest.raises(InvalidInputError, match="FP8"):
        training_time(GPT3, 10**9, "A100-80G", 8, mfu=0.4, precision="fp8")
    with pytest.raises(NotFoundError):
        training_time(GPT3, 10**9, "A1000", 8, mfu=0.4)
