"""Training memory against published measurements and the ZeRO paper's arithmetic.

Measured LoRA figures for a 7B model (all Llama 2 7B, LitGPT, ``torch.cuda.max_memory_allocated``
in GB = 10⁹ B, bf16-true, LoRA dropout 0.05 on q and v, no activation checkpointing; LitGPT runs
the longest training sample first, so the peak is at the longest sequence):

1. LitGPT ``tutorials/resource-tables.md`` (A100-40GB, Alpaca, longest sample 1,304 tokens),
   r = 8, micro-batch 1: 21.30 GB.
2. Same table, micro-batch 2: 29.07 GB.
3. LitGPT ``config_hub/finetune/README.md``, ``llama-2-7b/lora.yaml`` (r = 32, max_seq_length 512,
   micro-batch 2, A10G): 19.77 GB.

The planner comes out 3–7 % high on these: it counts each LoRA adapter's own dropout copy of its
input (PEFT keeps one per adapted matrix; LitGPT's fused QKV keeps one) and every linear-layer
input (a frozen layer need not keep it). QLoRA in the same table (nf4 14.14 GB, nf4-dq 13.84 GB)
comes out 7 % low; the config-hub QLoRA figure (13.68 GB) is 17 % above the planner and is not
asserted — see docs/compute.md.
"""

from __future__ import annotations

import pytest

from hanlin.compute import (
    KNOWN_MODELS,
    TrainMemoryOptions,
    lora_params,
    model_state_terms,
    training_memory,
)
from hanlin.errors import InvalidInputError

LLAMA2_7B = KNOWN_MODELS["llama2-7b"]
LITGPT = {
    "precision": "bf16",
    "lora_targets": "qv",
    "lora_dropout": True,
    "grad_checkpointing": False,
    "fp32_loss": False,
}


@pytest.mark.parametrize(
    ("method", "rank", "seq", "batch", "extra", "measured_gb"),
    [
        ("lora", 8, 1304, 1, {}, 21.30),  # resource-tables.md, micro-batch 1
        ("lora", 8, 1304, 2, {}, 29.07),  # resource-tables.md, micro-batch 2
        ("lora", 32, 512, 2, {}, 19.77),  # config_hub llama-2-7b/lora.yaml
        ("qlora", 8, 1304, 1, {"double_quant": False}, 14.14),  # resource-tables.md, bnb.nf4
        ("qlora", 8, 1304, 1, {"double_quant": True}, 13.84),  # resource-tables.md, bnb.nf4-dq
    ],
)
def test_7b_lora_memory_matches_published_measurements(
    method: str, rank: int, seq: int, batch: int, extra: dict[str, bool], measured_gb: float
) -> None:
    opts = TrainMemoryOptions(
        method=method,
        lora_rank=rank,
        seq_len=seq,
        micro_batch=batch,  # type: ignore[arg-type]
        **LITGPT,
        **extra,
    )
    est = training_memory(LLAMA2_7B, opts)
    assert abs(est.allocated_bytes / 1e9 / measured_gb - 1) < 0.15
    if method == "lora":
        assert est.allocated_bytes / 1e9 > measured_gb  # the planner errs on the safe side here


def test_lora_trainable_parameters_match_litgpt_and_peft() -> None:
    # LitGPT prints 4,194,304 trainable parameters for r=8 on q and v of Llama 2 7B
    assert lora_params(LLAMA2_7B, 8, "qv") == 4_194_304
    # PEFT all-linear r=8 on Qwen2-7B: 0.2643 % of 7.6B (hiyouga/LLaMA-Factory#7409) = 20.2M
    qwen = KNOWN_MODELS["qwen2.5-7b"]
    assert lora_params(qwen, 8, "all-linear") / qwen.total_params == pytest.approx(
        0.002643, rel=0.01
    )


@pytest.mark.parametrize(("zero", "expected_gb"), [(0, 120), (1, 31.4), (2, 16.6), (3, 1.9)])
def test_model_states_reproduce_zero_paper_figure_1(zero: int, expected_gb: float) -> None:
    """Rajbhandari et al. 2020, Figure 1: 7.5B parameters, 64 data-parallel GPUs, mixed-precision
    Adam (K = 12): 120 GB baseline, 31.4 GB (P_os), 16.6 GB (P_os+g), 1.9 GB (P_os+g+p)."""
    terms = model_state_terms(7.5e9, precision="bf16-mixed", optimizer="adamw", zero=zero, dp=64)
    assert sum(t.value for t in terms) / 1e9 == pytest.approx(expected_gb, rel=0.02)


def test_honest_overheads_are_itemised() -> None:
    est = training_memory(LLAMA2_7B, TrainMemoryOptions(method="lora"), "A100-80G")
    names = [t.name for t in est.terms]
    for term in ("CUDA context + kernels", "allocator fragmentation", "logits and loss"):
        assert term in names
    assert est.total_bytes > est.allocated_bytes + 0.5 * 2**30
    multi = training_memory(LLAMA2_7B, TrainMemoryOptions(method="lora", gpus=8), "A100-80G")
    assert "NCCL buffers" in [t.name for t in multi.terms]


def test_memory_levers_move_the_estimate_the_right_way() -> None:
    def total(**kw: object) -> float:
        return training_memory(LLAMA2_7B, TrainMemoryOptions(**kw)).total_bytes  # type: ignore[arg-type]

    full = total(method="full", seq_len=2048)
    assert total(method="lora", seq_len=2048) < full / 4
    assert total(method="qlora", seq_len=2048) < total(method="lora", seq_len=2048) - 8e9
    assert total(method="full", optimizer="adamw-8bit") < full - 35e9  # 12 → 6 B/param
    assert total(method="lora", grad_checkpointing=False) > total(method="lora") + 5e9
    assert total(method="lora", micro_batch=4) > total(method="lora", micro_batch=1)
    assert total(method="lora", attention="eager", seq_len=4096) > total(
        method="lora", seq_len=4096
    )
    sharded = [total(method="full", gpus=8, zero=z) for z in (0, 1, 2, 3)]
    assert sharded == sorted(sharded, reverse=True) and sharded[3] < sharded[0] / 5
    assert total(method="full", gpus=8, tp=8) < full / 5


def test_full_finetune_of_7b_does_not_fit_one_80g_gpu_but_lora_does() -> None:
    full = training_memory(LLAMA2_7B, TrainMemoryOptions(method="full"), "A100-80G")
    lora = training_memory(LLAMA2_7B, TrainMemoryOptions(method="lora"), "A100-80G")
    assert full.fits is False and lora.fits is True
    assert full.trainable_params == LLAMA2_7B.total_params


def test_moe_and_latent_attention_models_are_supported() -> None:
    est = training_memory(
        KNOWN_MODELS["deepseek-v3"],
        TrainMemoryOptions(method="full", gpus=2048, tp=8, pp=16, zero=1),
        "H800",
    )
    assert est.fits is True  # DeepSeek-V3 was trained on 2,048 H800s


def test_impossible_parallel_layouts_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="multiple of tp"):
        training_memory(LLAMA2_7B, TrainMemoryOptions(gpus=6, tp=4))
    with pytest.raises(InvalidInputError, match="divide the 32 heads"):
        training_memory(LLAMA2_7B, TrainMemoryOptions(gpus=3, tp=3))
