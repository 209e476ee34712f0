"""Scale-out: accelerate configs that ``accelerate launch`` accepts, and a 2-process CPU DDP run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hanlin.errors import InvalidInputError
from hanlin.tune.distributed import STRATEGIES, accelerate_config
from hanlin.tune.runs import get_run
from tests.tune.tiny import cli


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_configs_are_what_accelerate_launch_reads(strategy: str, tmp_path: Path) -> None:
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.commands.launch import launch_command_parser

    path = tmp_path / f"{strategy}.yaml"
    assert cli(["tune", "accelerate-config", strategy, "--gpus", "4", "--out", str(path)]) == 0
    loaded = load_config_from_file(str(path))  # accelerate's own loader: unknown keys fail
    assert loaded.num_processes == 4
    expected = {"ddp": "MULTI_GPU", "fsdp": "FSDP", "zero2": "DEEPSPEED", "zero3": "DEEPSPEED"}
    assert str(loaded.distributed_type).endswith(expected[strategy])
    # every nested key is a real `accelerate launch` option
    args = launch_command_parser().parse_args(["--config_file", str(path), "train.py"])
    for section in ("fsdp_config", "deepspeed_config"):
        for key in getattr(loaded, section):
            assert hasattr(args, key), f"{key} is not an accelerate launch option"
    if strategy == "zero3":
        assert loaded.deepspeed_config["zero_stage"] == 3


def test_multi_machine_config_needs_the_main_address() -> None:
    with pytest.raises(InvalidInputError, match="main machine"):
        accelerate_config("ddp", gpus=8, machines=2)
    cfg = accelerate_config("fsdp", gpus=8, machines=2, machine_rank=1, main_ip="10.0.0.1")
    assert cfg["num_processes"] == 16 and cfg["main_process_ip"] == "10.0.0.1"
    with pytest.raises(InvalidInputError, match="unknown strategy"):
        accelerate_config("zero4")


def test_config_printed_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["tune", "accelerate-config", "zero2", "--offload"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["deepspeed_config"]["offload_optimizer_device"] == "cpu"


def test_a_distributed_run_needs_a_run_id(
    tiny_model: Path, chat_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert cli(["tune", "run", "--data", str(chat_file), "--base", str(tiny_model)]) == 2


@pytest.mark.slow
def test_two_process_cpu_ddp_with_torchrun(
    tiny_model: Path, chat_file: Path, tmp_path: Path
) -> None:
    cfg = tmp_path / "ddp.yaml"
    cfg.write_text(
        f"base: {tiny_model}\ndata: {chat_file}\nmax_steps: 4\nsave_steps: 4\nbatch_size: 2\n"
        "max_len: 64\nevaluate: false\nval_ratio: 0.2\n"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            "29547",
            "-m",
            "hanlin",
            "tune",
            "run",
            str(cfg),
            "--run-id",
            "ddp",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("run ddp: done after 4 steps") == 1  # rank 0 reports, once
    run = get_run("ddp")
    assert run.info()["status"] == "done"
    rows = [m for m in run.metrics() if "loss" in m]
    # 9 training records, 2 per process and step, 2 processes: an epoch is 3 steps
    # (one process alone would need 5)
    assert [m["step"] for m in rows] == [1, 2, 3, 4]
    assert rows[0]["epoch"] == pytest.approx(1 / 3, abs=1e-3)
    assert (run.path / "adapter" / "adapter_model.safetensors").is_file()
