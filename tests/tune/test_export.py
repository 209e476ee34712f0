"""Merging a LoRA adapter and exporting it to GGUF, on a tiny Gemma 3 built in the test."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hanlin.errors import InvalidInputError, NotFoundError
from hanlin.tune.export import adapter_tensors_for_gguf, export_gguf_adapter, merge_adapter
from tests.tune.tiny import build_tiny_model

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
GGUF_OF = {
    "q_proj": "attn_q",
    "k_proj": "attn_k",
    "v_proj": "attn_v",
    "o_proj": "attn_output",
    "gate_proj": "ffn_gate",
    "up_proj": "ffn_up",
    "down_proj": "ffn_down",
}


def build_tiny_gemma(path: Path, hidden: int = 32) -> Path:
    """A 2-layer random Gemma 3 text model with the tiny BPE tokenizer of tests/tune/tiny.py."""
    from transformers import AutoTokenizer, Gemma3ForCausalLM, Gemma3TextConfig, set_seed

    tok_dir = build_tiny_model(path.parent / f"{path.name}-llama")
    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    set_seed(0)
    config = Gemma3TextConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=256,
        sliding_window=64,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    Gemma3ForCausalLM(config).save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return path


def make_adapter(base_dir: Path, out: Path, **lora: Any) -> Path:
    """A LoRA adapter with random (non-zero) A and B, saved by plain PEFT."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(str(base_dir))
    cfg = LoraConfig(
        r=lora.pop("r", 4),
        lora_alpha=lora.pop("lora_alpha", 8),
        target_modules=TARGETS,
        init_lora_weights=False,  # random B: the adapter changes the output
        task_type="CAUSAL_LM",
        **lora,
    )
    peft_model = get_peft_model(model, cfg)
    peft_model.save_pretrained(str(out))
    return out


def write_base_gguf(model_dir: Path, out: Path) -> Path:
    """A GGUF holding the tiny model's weights under llama.cpp's gemma3 tensor names.

    Only names, shapes and header fields matter to the export (llama.cpp itself is tested on
    the real bundled model in test_e2e_tune.py).
    """
    import gguf
    from safetensors.numpy import load_file

    cfg = json.loads((model_dir / "config.json").read_text())
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.GEMMA3, cfg["num_hidden_layers"])
    writer = gguf.GGUFWriter(str(out), "gemma3")
    writer.add_block_count(cfg["num_hidden_layers"])
    writer.add_head_count(cfg["num_attention_heads"])
    writer.add_head_count_kv(cfg["num_key_value_heads"])
    for key, value in load_file(str(model_dir / "model.safetensors")).items():
        name = names.get_name(key, try_suffixes=(".weight",))
        assert name is not None, key
        writer.add_tensor(name, value.astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


@pytest.fixture(scope="module")
def tiny_gemma(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_gemma(tmp_path_factory.mktemp("gemma") / "model")


@pytest.fixture(scope="module")
def adapter(tiny_gemma: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_adapter(tiny_gemma, tmp_path_factory.mktemp("adapter") / "adapter")


@pytest.fixture(scope="module")
def base_gguf(tiny_gemma: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_base_gguf(tiny_gemma, tmp_path_factory.mktemp("gguf") / "base.gguf")


def test_merged_model_gives_the_adapters_logits(
    tiny_gemma: Path, adapter: Path, tmp_path: Path
) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = merge_adapter(adapter, tiny_gemma, tmp_path / "merged")
    assert (out / "model.safetensors").is_file()
    assert (out / "tokenizer.json").is_file()
    assert not list(tmp_path.glob(".*tmp"))  # the temporary folder was renamed away

    ids = AutoTokenizer.from_pretrained(str(out))("User: 中国的首都是哪里？", return_tensors="pt")
    base = AutoModelForCausalLM.from_pretrained(str(tiny_gemma))
    with torch.no_grad():
        plain = base(**ids).logits
        tuned = PeftModel.from_pretrained(base, str(adapter))(**ids).logits
        merged = AutoModelForCausalLM.from_pretrained(str(out))(**ids).logits
    assert not torch.allclose(plain, tuned, atol=1e-4)  # the adapter does something
    torch.testing.assert_close(merged, tuned, atol=1e-5, rtol=1e-4)


def test_merge_refuses_a_folder_without_adapter(tiny_gemma: Path, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no LoRA adapter"):
        merge_adapter(tmp_path, tiny_gemma, tmp_path / "merged")


def test_gguf_adapter_has_llama_cpp_names_shapes_and_header(
    adapter: Path, base_gguf: Path, tmp_path: Path
) -> None:
    import gguf
    from safetensors.numpy import load_file

    path = export_gguf_adapter(adapter, base_gguf, tmp_path / "adapter.gguf")
    reader = gguf.GGUFReader(str(path))
    assert reader.get_field("general.architecture").contents() == "gemma3"
    assert reader.get_field("general.type").contents() == "adapter"
    assert reader.get_field("adapter.type").contents() == "lora"
    assert reader.get_field("adapter.lora.alpha").contents() == pytest.approx(8.0)

    expected = {
        f"blk.{i}.{GGUF_OF[m]}.weight.lora_{ab}" for i in range(2) for m in TARGETS for ab in "ab"
    }
    tensors = {t.name: t for t in reader.tensors}
    assert set(tensors) == expected
    base = {t.name: tuple(int(d) for d in t.shape) for t in gguf.GGUFReader(str(base_gguf)).tensors}
    peft = load_file(str(adapter / "adapter_model.safetensors"))
    for i in range(2):
        for module in TARGETS:
            name = f"blk.{i}.{GGUF_OF[module]}.weight"
            n_in, n_out = base[name]  # GGUF order: innermost first
            a, b = tensors[name + ".lora_a"], tensors[name + ".lora_b"]
            # what llama.cpp checks: a is [in, r], b is [r, out]
            assert tuple(int(d) for d in a.shape) == (n_in, 4)
            assert tuple(int(d) for d in b.shape) == (4, n_out)
            kind = (
                "self_attn" if module.endswith(("q_proj", "k_proj", "v_proj", "o_proj")) else "mlp"
            )
            key = f"base_model.model.model.layers.{i}.{kind}.{module}.lora_B.weight"
            np.testing.assert_array_equal(np.asarray(b.data).reshape(peft[key].shape), peft[key])


def test_rslora_alpha_is_rescaled_for_llama_cpp(
    tiny_gemma: Path, base_gguf: Path, tmp_path: Path
) -> None:
    rs = make_adapter(tiny_gemma, tmp_path / "rs", r=4, lora_alpha=8, use_rslora=True)
    _, alpha, _ = adapter_tensors_for_gguf(rs, base_gguf)
    # llama.cpp scales by alpha / r; rsLoRA by alpha / sqrt(r)
    assert alpha / 4 == pytest.approx(8 / math.sqrt(4))


def test_export_refuses_an_adapter_for_another_base(
    adapter: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    other = build_tiny_gemma(tmp_path_factory.mktemp("other") / "model", hidden=48)
    wrong = write_base_gguf(other, tmp_path / "other.gguf")
    with pytest.raises(InvalidInputError, match="do not fit the base"):
        export_gguf_adapter(adapter, wrong, tmp_path / "x.gguf")
    assert not (tmp_path / "x.gguf").exists()


def test_export_refuses_embedding_lora(tiny_gemma: Path, base_gguf: Path, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_gemma))
    cfg = LoraConfig(r=2, target_modules=["embed_tokens", "q_proj"], task_type="CAUSAL_LM")
    get_peft_model(model, cfg).save_pretrained(str(tmp_path / "emb"))
    with pytest.raises(InvalidInputError, match="cannot apply this adapter tensor"):
        export_gguf_adapter(tmp_path / "emb", base_gguf, tmp_path / "x.gguf")


def test_export_needs_an_adapter_folder(base_gguf: Path, tmp_path: Path) -> None:
    shutil.rmtree(tmp_path, ignore_errors=True)
    tmp_path.mkdir()
    with pytest.raises(NotFoundError, match=r"adapter_config\.json"):
        export_gguf_adapter(tmp_path, base_gguf, tmp_path / "x.gguf")
