"""``kill -9`` a real ``hanlin tune run`` process, then ``hanlin tune resume`` finishes it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hanlin.tune.runs import get_run
from tests.tune.tiny import cli

pytestmark = pytest.mark.slow


def test_sigkill_then_resume_continues_from_the_last_checkpoint(
    tiny_model: Path, chat_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        f"base: {tiny_model}\ndata: {chat_file}\nmax_steps: 40\nsave_steps: 4\n"
        "batch_size: 2\nmax_len: 64\nevaluate: false\nval_ratio: 0\n"
    )
    log = (tmp_path / "run.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hanlin", "tune", "run", str(cfg), "--run-id", "killme"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    ckpt_dir = Path(os.environ["HANLIN_HOME"]) / "tune" / "runs" / "killme" / "checkpoints"
    deadline = time.monotonic() + 240
    try:
        while not list(ckpt_dir.glob("checkpoint-*/trainer_state.json")):
            assert proc.poll() is None, (tmp_path / "run.log").read_text()
            assert time.monotonic() < deadline, "no checkpoint within 240 s"
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    run = get_run("killme")
    ckpt = run.last_checkpoint()
    assert ckpt is not None
    killed_at = int(ckpt.name.split("-")[1])
    assert killed_at < 40
    before = {m["step"]: m for m in run.metrics() if "loss" in m and m["step"] <= killed_at}
    assert sorted(before) == list(range(1, killed_at + 1))

    assert cli(["tune", "ls"]) == 0
    assert "interrupted" in capsys.readouterr().out  # the dead process no longer says running

    assert cli(["tune", "resume", "killme"]) == 0
    captured = capsys.readouterr()
    assert f"from step {killed_at}" in captured.err
    info = run.info()
    assert info["status"] == "done" and info["steps"] == 40
    rows = [m for m in run.metrics() if "loss" in m]
    assert [m["step"] for m in rows] == list(range(1, 41))  # each step once, none repeated
    for m in rows[:killed_at]:
        assert m == before[m["step"]]  # rows up to the checkpoint were kept as written
    assert rows[killed_at]["elapsed_s"] >= rows[killed_at - 1]["elapsed_s"]  # clock continues
    state = json.loads((run.checkpoints / "checkpoint-40" / "trainer_state.json").read_text())
    assert state["global_step"] == 40
    assert (run.path / "adapter" / "adapter_model.safetensors").is_file()
    assert (run.path / "loss.png").is_file()
    assert cli(["tune", "resume", "killme"]) == 2  # a finished run is not resumed again
