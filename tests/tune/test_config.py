"""Run configuration: YAML + flags, defaults per method, unknown keys are errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from hanlin.errors import ConfigError, NotFoundError
from hanlin.tune.config import load_config, parse_config


def test_defaults_follow_the_method() -> None:
    sft = parse_config({"data": "x.jsonl"})
    assert sft.method == "sft" and sft.lora and sft.lr == 2e-4
    full = parse_config({"data": "x.jsonl", "lora": False})
    assert not full.lora and full.lr == 2e-5
    cpt = parse_config({"data": "x.txt", "method": "cpt"})
    assert not cpt.lora and cpt.lr == 5e-5 and cpt.epochs == 1.0
    dpo = parse_config({"data": "p.jsonl", "method": "dpo"})
    assert dpo.lora and dpo.lr == 5e-6 and dpo.batch_size == 2
    assert parse_config({"data": "x", "qlora": True}).uses_lora
    assert parse_config({"data": "x", "lr": 1e-3}).lr == 1e-3  # a set key wins


def test_unknown_keys_list_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config({"data": "x", "learning_rate": 1e-4, "epoch": 2})
    assert (
        "learning_rate, epoch" in exc.value.message or "epoch, learning_rate" in exc.value.message
    )
    assert exc.value.hint is not None and "lr" in exc.value.hint and "max_steps" in exc.value.hint


def test_invalid_values_name_the_key() -> None:
    with pytest.raises(ConfigError, match="batch_size") as exc:
        parse_config({"data": "x", "batch_size": 0, "method": "sft"})
    with pytest.raises(ConfigError, match="method"):
        parse_config({"data": "x", "method": "ppo"})
    assert "docs/tune.md" in (exc.value.hint or "")


def test_yaml_file_flags_and_sets(tmp_path: Path) -> None:
    (tmp_path / "d.jsonl").write_text("{}\n")
    cfg_file = tmp_path / "run.yaml"
    cfg_file.write_text("method: sft\ndata: d.jsonl\nlr: 0.001\nlora_r: 4\n")
    cfg = load_config(cfg_file, {"lr": 0.01, "max_steps": None}, ["lora_r=8", "qlora=false"])
    assert cfg.data == str((tmp_path / "d.jsonl").resolve())  # relative to the YAML file
    assert cfg.lr == 0.01 and cfg.lora_r == 8 and cfg.qlora is False and cfg.max_steps == -1
    with pytest.raises(ConfigError, match="key=value"):
        load_config(cfg_file, sets=["lora_r"])
    with pytest.raises(NotFoundError):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="no dataset"):
        load_config(None, {"method": "sft"})
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(tmp_path / "list.yaml")
