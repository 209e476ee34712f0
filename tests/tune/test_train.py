"""Training runs on a tiny random model: every method, artifacts, metrics, estimate refusal."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from hanlin.errors import ConfigError
from hanlin.tune.config import parse_config
from hanlin.tune.estimate import DoesNotFitError
from hanlin.tune.runs import Run, list_runs
from hanlin.tune.train import start_run
from tests.tune.tiny import cli

pytestmark = pytest.mark.slow


def _config(model: Path, data: Path, **kw: Any) -> Any:
    values = {
        "base": str(model),
        "data": str(data),
        "max_steps": 6,
        "batch_size": 4,
        "max_len": 64,
        "save_steps": 3,
        "evaluate": False,
        **kw,
    }
    return parse_config(values)


def _losses(run: Run) -> list[float]:
    return [m["loss"] for m in run.metrics() if m.get("loss") is not None]


def test_sft_lora_writes_adapter_metrics_and_curve(tiny_model: Path, chat_file: Path) -> None:
    has_eval = importlib.util.find_spec("hanlin.tune.evaluate") is not None
    run = start_run(_config(tiny_model, chat_file, lr=5e-3, evaluate=has_eval), show=False)
    info = run.info()
    assert info["status"] == "done" and info["steps"] == 6 and info["lora"] is True
    assert info["method"] == "sft" and info["template"] == "transcript"
    assert info["base"] == {"spec": str(tiny_model), "hf_dir": str(tiny_model), "gguf": None}
    assert info["prompt_format"]["preamble"] == "" and info["finished"]
    adapter = run.path / "adapter"
    assert (adapter / "adapter_model.safetensors").is_file()
    assert json.loads((adapter / "adapter_config.json").read_text())["r"] == 16
    assert (adapter / "tokenizer.json").is_file()
    rows = [m for m in run.metrics() if "loss" in m]
    assert [m["step"] for m in rows] == [1, 2, 3, 4, 5, 6]
    assert set(rows[0]) == {"step", "epoch", "loss", "lr", "tokens_per_s", "elapsed_s"}
    assert all(m["tokens_per_s"] > 0 for m in rows)
    assert [m["step"] for m in run.metrics() if "eval_loss" in m] == [3, 6]
    assert (run.path / "loss.png").stat().st_size > 5000
    assert (run.path / "config.yaml").read_text().startswith("method: sft")
    assert sorted(p.name for p in run.checkpoints.iterdir()) == ["checkpoint-3", "checkpoint-6"]
    if has_eval:
        assert (run.path / "eval.json").is_file() and (run.path / "samples.md").is_file()
    # the run is one span in the app's trace store, with what it trained and how it went
    from hanlin.tracing import TraceQuery, setup

    assert setup.flush(10)
    store = setup.current_store()
    assert store is not None
    (trace,) = [t for t in store.list_traces(TraceQuery()) if t.name.startswith("fine_tune")]
    (span,) = store.get_trace(trace.trace_id)
    assert span.status == "ok" and span.operation == "fine_tune"
    assert span.attributes["hanlin.tune.run_id"] == run.id
    assert span.attributes["hanlin.tune.steps"] == 6
    assert span.attributes["hanlin.tune.final_loss"] == _losses(run)[-1]


def test_full_sft_learns_and_saves_loadable_weights(tiny_model: Path, chat_file: Path) -> None:
    from transformers import AutoModelForCausalLM

    run = start_run(
        _config(tiny_model, chat_file, lora=False, lr=3e-3, max_steps=12, save_steps=50),
        show=False,
    )
    losses = _losses(run)
    assert len(losses) == 12 and sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.3
    model = AutoModelForCausalLM.from_pretrained(str(run.path / "model"))
    assert model.config.num_hidden_layers == 2
    assert not (run.path / "adapter").exists()


def test_continued_pretraining_on_raw_text(tiny_model: Path, tmp_path: Path) -> None:
    text = tmp_path / "corpus.txt"
    text.write_text(
        "\n\n".join(f"Paragraph {i}: the sky is blue and bees make honey." for i in range(30))
    )
    run = start_run(_config(tiny_model, text, method="cpt", max_len=32), show=False)
    info = run.info()
    assert info["status"] == "done" and info["lora"] is False and info["data_format"] == "text"
    assert (run.path / "model" / "model.safetensors").is_file()
    assert len(_losses(run)) == 6


@pytest.mark.parametrize("lora", [True, False])
def test_dpo(tiny_model: Path, pref_file: Path, lora: bool) -> None:
    run = start_run(
        _config(tiny_model, pref_file, method="dpo", lora=lora, max_steps=3, batch_size=2),
        show=False,
    )
    assert run.info()["status"] == "done"
    losses = _losses(run)
    assert len(losses) == 3 and abs(losses[0] - 0.6931) < 0.01  # log 2: policy == reference
    artifact = "adapter/adapter_model.safetensors" if lora else "model/model.safetensors"
    assert (run.path / artifact).is_file()


def test_sft_rejects_raw_text_and_dpo_needs_pairs(
    tiny_model: Path, chat_file: Path, tmp_path: Path
) -> None:
    text = tmp_path / "t.txt"
    text.write_text("just text\n")
    with pytest.raises(ConfigError, match="method: cpt"):
        start_run(_config(tiny_model, text), show=False)
    with pytest.raises(ConfigError, match="preference pairs"):
        start_run(_config(tiny_model, chat_file, method="dpo"), show=False)
    assert list_runs() == []  # nothing half-made


def test_qlora_without_a_gpu_is_a_clear_error(tiny_model: Path, chat_file: Path) -> None:
    with pytest.raises(ConfigError, match="QLoRA needs a CUDA GPU") as exc:
        start_run(_config(tiny_model, chat_file, qlora=True), show=False)
    assert "lora: true" in (exc.value.hint or "")


def test_a_run_that_cannot_fit_is_refused(
    tiny_model: Path, chat_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tiny_model, chat_file, batch_size=100_000, max_len=100_000)
    with pytest.raises(DoesNotFitError, match="needs ≈") as exc:
        start_run(config, show=False)
    assert "--force" in (exc.value.hint or "")
    assert list_runs() == []
    assert (
        cli(
            [
                "tune",
                "run",
                "--data",
                str(chat_file),
                "--base",
                str(tiny_model),
                "--batch-size",
                "100000",
                "--max-len",
                "100000",
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "estimate" in err and "memory: ≈" in err and "--force" in err


def test_cli_run_ls_show(
    tiny_model: Path, chat_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        f"base: {tiny_model}\ndata: {chat_file}\nmax_steps: 2\nsave_steps: 2\n"
        "evaluate: false\nmax_len: 64\n"
    )
    assert cli(["tune", "run", str(cfg), "--run-id", "my-run", "--set", "lora_r=4"]) == 0
    captured = capsys.readouterr()
    assert "estimate" in captured.err and "time: ≈" in captured.err
    assert "run my-run: done after 2 steps" in captured.out
    assert cli(["tune", "ls"]) == 0
    listing = capsys.readouterr().out
    assert "my-run" in listing and "done" in listing and "sft lora" in listing
    assert cli(["tune", "show", "my", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["run"]["status"] == "done" and "adapter" in shown["artifacts"]
    assert shown["last_metrics"][-1]["step"] == 2
    assert cli(["tune", "show", "my-run"]) == 0
    text = capsys.readouterr().out
    assert "lora_r: 4" in text and "adapter:" in text
    assert cli(["tune", "run", str(cfg), "--run-id", "my-run"]) == 2  # already exists
    assert cli(["tune", "show", "nope"]) == 2
