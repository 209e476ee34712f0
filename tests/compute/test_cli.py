"""``hanlin compute …`` as a user types it: the issue's example commands, JSON for scripts,
breakdown tables, and errors that say what to do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hanlin.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the real entry point in-process; returns (exit code, stdout, stderr)."""
    try:
        main(["compute", *args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def as_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    code, out, err = run(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_train_example_from_the_issue(capsys: pytest.CaptureFixture[str]) -> None:
    data = as_json(
        capsys,
        "train",
        "--model",
        "gpt3-175b",
        "--tokens",
        "300B",
        "--gpu",
        "A100-80G",
        "--gpus",
        "1024",
        "--mfu",
        "0.34",
    )
    t = data["training"]
    assert t["tokens"] == 300 * 10**9 and t["gpus"] == 1024
    assert t["flops"] == pytest.approx(3.14e23, rel=0.02)
    # FLOPs / (1024 GPUs × 0.34 × 312 TFLOP/s) ≈ 33.5 days
    assert t["seconds"] == pytest.approx(t["flops"] / (1024 * 0.34 * 312e12))
    assert t["seconds"] / 86400 == pytest.approx(33.5, rel=0.01)
    assert {term["name"] for term in t["terms"]} >= {"dense FLOPs", "GPU-hours"}
    assert data["memory"]["fits"] is False  # 175B needs tensor/pipeline parallelism


def test_finetune_example_from_the_issue(capsys: pytest.CaptureFixture[str]) -> None:
    data = as_json(
        capsys,
        "finetune",
        "--model",
        "llama2-7b",
        "--method",
        "lora",
        "--seq",
        "2048",
        "--micro-batch",
        "2",
        "--gpu",
        "H20",
    )
    mem = data["memory"]
    assert mem["gpu"] == "H20" and mem["fits"] is True
    assert 14 * 2**30 < mem["total_bytes"] < 30 * 2**30
    names = [t["name"] for t in mem["terms"]]
    assert "base weights (frozen)" in names and "CUDA context + kernels" in names


def test_serve_example_from_the_issue(capsys: pytest.CaptureFixture[str]) -> None:
    data = as_json(
        capsys,
        "serve",
        "--model",
        "llama3-70b",
        "--context",
        "32k",
        "--concurrency",
        "64",
        "--gpu",
        "H20",
        "--quant",
        "int8",
    )
    assert data["kv_bytes_per_token"] == 320 * 1024
    assert data["kv_bytes_total"] == 64 * 32768 * 320 * 1024
    assert data["fits"] is False and data["max_concurrency"] >= 1


def hanlin(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed command in a subprocess, with a terminal wide enough for the tables."""
    return subprocess.run(
        [sys.executable, "-m", "hanlin", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "250"},
        timeout=120,
    )


@pytest.mark.slow
def test_tables_show_the_formula_terms() -> None:
    r = hanlin(
        "compute",
        "serve",
        "--model",
        "llama2-70b",
        "--gpu",
        "H100",
        "--context",
        "4k",
        "--gpus",
        "2",
    )
    assert r.returncode == 0, r.stderr
    assert "KV cache per token" in r.stdout and "320.00 KiB" in r.stdout
    assert "2 × 80 layers × 8 KV heads × 128 head dim × 2 B" in r.stdout
    assert "✓ fits" in r.stdout
    r = hanlin(
        "compute",
        "finetune",
        "--model",
        "llama3-8b",
        "--method",
        "qlora",
        "--gpu",
        "RTX-4090",
        "--targets",
        "qv",
    )
    assert r.returncode == 0, r.stderr
    assert "[rank 16, qv]" in r.stdout  # formula text is not swallowed as console markup
    assert "NF4 + double-quantized scales" in r.stdout


def test_model_and_gpus_listings(capsys: pytest.CaptureFixture[str]) -> None:
    model = as_json(capsys, "model", "mixtral-8x7b")
    assert model["total_params"] == 46_702_792_704 and model["active_params"] == 12_879_925_248
    gpus = as_json(capsys, "gpus")
    assert {"H20", "Ascend-910B", "MI300X"} <= {g["name"] for g in gpus}
    assert all(g["source"] for g in gpus)
    code, out, _ = run(capsys, "model", "--list")
    assert code == 0 and "deepseek-v3" in out


def test_config_json_as_model(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = {
        "model_type": "llama",
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "vocab_size": 128256,
        "tie_word_embeddings": False,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    data = as_json(capsys, "model", str(tmp_path / "config.json"))
    assert data["total_params"] == 8_030_261_248


@pytest.mark.parametrize(
    ("args", "message", "hint"),
    [
        (
            ["train", "--model", "llama2-7b", "--tokens", "1T", "--gpu", "H100", "--gpus", "-8"],
            "--gpus must be at least 1",
            None,
        ),
        (["finetune", "--model", "llama2-7b", "--gpu", "H100", "--gpus", "-2"], "--gpus", None),
        (
            ["train", "--model", "llama2-7b", "--tokens", "300X", "--gpu", "H100"],
            "cannot read token count '300X'",
            "300B",
        ),
        (
            ["serve", "--model", "llama2-7b", "--gpu", "A100-80"],
            "unknown GPU 'A100-80'",
            "did you mean A100-80G",
        ),
        (["serve", "--model", "llama-2-7b-chat", "--gpu", "H100"], "unknown model", "llama2-7b"),
        (
            ["finetune", "--model", "llama2-7b", "--gpu", "H100", "--method", "dora"],
            "--method",
            "--help",
        ),
    ],
)
def test_bad_input_gives_a_message_and_what_to_do(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str, hint: str | None
) -> None:
    code, out, err = run(capsys, *args)
    flat = " ".join(err.split())
    assert code == 2, (out, err)
    assert "error:" in flat and message in flat
    if hint:
        assert hint in flat


def test_config_missing_fields_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "vocab_size": 10}))
    code, _, err = run(capsys, "model", str(tmp_path / "config.json"))
    flat = " ".join(err.split())
    assert code == 2 and "is missing num_hidden_layers, hidden_size" in flat


@pytest.mark.slow
def test_real_entry_point_in_a_subprocess() -> None:
    r = hanlin(
        "compute",
        "train",
        "--model",
        "chinchilla-70b",
        "--tokens",
        "1.4T",
        "--gpu",
        "A100",
        "--gpus",
        "1024",
        "--mfu",
        "0.4",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["training"]["flops"] == pytest.approx(5.9e23, rel=0.01)
    r = hanlin("compute", "serve", "--model", "llama2-7b", "--gpu", "H21")
    assert r.returncode == 2 and "unknown GPU 'H21'" in r.stderr and "did you mean" in r.stderr
