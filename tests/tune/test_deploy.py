"""Deploying runs into the gateway's ``local`` endpoint, and the output commands' CLI.

Runs are written by hand in the shared run-directory layout (run.json + adapter/), with an
adapter made by plain PEFT on a tiny Gemma 3 and a GGUF holding that model's tensors. llama.cpp
itself is exercised on the real bundled model in test_e2e_tune.py; here ``check=False``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from hanlin.errors import InvalidInputError, NotFoundError
from hanlin.models.base import Endpoint
from hanlin.models.providers.llamacpp import LlamaCppProvider
from hanlin.models.providers.llamacpp_models import deployed_models
from hanlin.tune.deploy import deploy, undeploy
from tests.tune.test_export import build_tiny_gemma, make_adapter, write_base_gguf

FORMAT = {
    "user": "问：{text}\n",
    "assistant": "答：{text}\n",
    "generation": "答：",
    "stop": ["\n问："],
}


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("deploy-parts")
    model = build_tiny_gemma(root / "model")
    return {
        "model": model,
        "adapter": make_adapter(model, root / "adapter"),
        "gguf": write_base_gguf(model, root / "base.gguf"),
    }


def make_run(home: Path, parts: dict[str, Path], run_id: str = "r1", **info: Any) -> Path:
    run = home / "tune" / "runs" / run_id
    run.mkdir(parents=True)
    data = {
        "id": run_id,
        "status": "done",
        "method": "sft",
        "lora": True,
        "qlora": False,
        "base": {
            "spec": str(parts["gguf"]),
            "hf_dir": str(parts["model"]),
            "gguf": str(parts["gguf"]),
        },
        "template": "custom",
        "prompt_format": FORMAT,
        "created": "2026-11-24T09:00:00+00:00",
        "finished": "2026-11-24T09:05:00+00:00",
        "steps": 6,
        "dataset": "/data/qa.jsonl",
        **info,
    }
    (run / "run.json").write_text(json.dumps(data), "utf-8")
    if data["lora"]:
        shutil.copytree(parts["adapter"], run / "adapter")
    else:
        shutil.copytree(parts["model"], run / "model")
    return run


def provider() -> LlamaCppProvider:
    return LlamaCppProvider(Endpoint("local", "llamacpp"))


def test_deploy_registers_a_model_the_local_endpoint_serves(
    hanlin_home: Path, parts: dict[str, Path]
) -> None:
    run = make_run(hanlin_home, parts)
    d = deploy("r1", "qa-bot", check=False)
    assert d.model == "local/qa-bot"
    assert (run / "adapter.gguf").is_file()
    assert d.lora_path == hanlin_home / "models" / "deployed" / "qa-bot.lora.gguf"

    p = provider()  # a fresh provider, as a new server or CLI process would make
    assert p.model_path("qa-bot") == parts["gguf"]
    assert p.lora("qa-bot") == (d.lora_path, 1.0)
    fmt = p.prompt_format("qa-bot")  # the format the run trained with
    assert (fmt.user, fmt.generation, fmt.stop) == ("问：{text}\n", "答：", ("\n问：",))
    # the bundled model is untouched
    assert p.lora("gemma3-270m") == (None, 1.0)
    # listed with the endpoint's models (`hanlin models ls`, the server's /v1/models)
    listed = [m.name for m in LlamaCppProvider.presets()[0].models]
    assert listed == ["gemma3-270m", "qa-bot"]

    # deleting the run does not break the deployment: the adapter was copied
    shutil.rmtree(run)
    assert provider().lora("qa-bot")[0] == d.lora_path


def test_an_adapter_can_be_configured_in_hanlin_toml_and_wins_over_a_deployment(
    hanlin_home: Path, parts: dict[str, Path], tmp_path: Path
) -> None:
    make_run(hanlin_home, parts)
    deploy("r1", "qa-bot", check=False)
    mine = tmp_path / "mine.lora.gguf"
    mine.write_bytes(b"GGUF")
    entry = {"path": str(parts["gguf"]), "lora_path": str(mine), "lora_scale": 0.5}
    p = LlamaCppProvider(Endpoint("local", "llamacpp", options={"models": {"qa-bot": entry}}))
    assert p.lora("qa-bot") == (mine, 0.5)
    assert p.prompt_format("qa-bot").user == "User: {text}\n"  # the endpoint's default


def test_names_are_checked_and_not_taken_twice(hanlin_home: Path, parts: dict[str, Path]) -> None:
    make_run(hanlin_home, parts, "r1")
    make_run(hanlin_home, parts, "r2")
    for bad in ("gemma3-270m", "a/b", "", "-x"):
        with pytest.raises(InvalidInputError, match="cannot be a deployed model name"):
            deploy("r1", bad, check=False)
    deploy("r1", "bot", check=False)
    with pytest.raises(InvalidInputError, match="already deployed"):
        deploy("r2", "bot", check=False)
    deploy("r2", "bot", check=False, replace=True, lora_scale=0.5)
    assert deployed_models()["bot"]["run"] == "r2"
    assert provider().lora("bot")[1] == 0.5


def test_undeploy_removes_the_model_and_its_adapter(
    hanlin_home: Path, parts: dict[str, Path]
) -> None:
    make_run(hanlin_home, parts)
    d = deploy("r1", "qa-bot", check=False)
    with pytest.raises(NotFoundError, match="did you mean 'qa-bot'"):
        undeploy("qa-bott")
    undeploy("qa-bot")
    assert "qa-bot" not in deployed_models()
    assert not d.lora_path.exists()
    with pytest.raises(NotFoundError, match="no local model 'qa-bot'"):
        provider().model_path("qa-bot")


def test_full_fine_tunes_are_refused_with_the_way_out(
    hanlin_home: Path, parts: dict[str, Path]
) -> None:
    make_run(hanlin_home, parts, lora=False)
    with pytest.raises(InvalidInputError, match="full fine-tune") as exc:
        deploy("r1", "full", check=False)
    assert exc.value.hint is not None and "vLLM" in exc.value.hint
    assert deployed_models() == {}


def test_runs_from_a_hf_folder_have_no_llama_cpp_base(
    hanlin_home: Path, parts: dict[str, Path]
) -> None:
    base = {"spec": str(parts["model"]), "hf_dir": str(parts["model"]), "gguf": None}
    make_run(hanlin_home, parts, base=base)
    with pytest.raises(InvalidInputError, match="not a GGUF file") as exc:
        deploy("r1", "x", check=False)
    assert exc.value.hint is not None and "hanlin tune merge r1" in exc.value.hint


def test_a_missing_adapter_file_is_a_config_error(
    hanlin_home: Path, parts: dict[str, Path]
) -> None:
    from hanlin.errors import ConfigError

    make_run(hanlin_home, parts)
    d = deploy("r1", "qa-bot", check=False)
    d.lora_path.unlink()
    with pytest.raises(ConfigError, match="LoRA adapter for local/qa-bot does not exist"):
        provider().lora("qa-bot")


# --- the CLI ----------------------------------------------------------------------------------


@pytest.fixture
def app() -> typer.Typer:
    from hanlin.cli.tune_results import register

    app = typer.Typer()
    register(app)
    return app


def test_cli_merge_export_deploy_list_undeploy(
    app: typer.Typer, hanlin_home: Path, parts: dict[str, Path]
) -> None:
    run = make_run(hanlin_home, parts)
    cli = CliRunner()

    r = cli.invoke(app, ["merge", "r1"])
    assert r.exit_code == 0, r.output
    assert (run / "merged" / "model.safetensors").is_file()
    assert (run / "merged" / "tokenizer.json").is_file()

    r = cli.invoke(app, ["export-gguf", "r1", "--no-check"])
    assert r.exit_code == 0, r.output
    assert "adapter.gguf" in r.output and (run / "adapter.gguf").stat().st_size > 0

    r = cli.invoke(app, ["deployed"])
    assert "no deployed models" in r.output

    r = cli.invoke(app, ["deploy", "r1", "--name", "a"])  # the check needs a real GGUF model
    assert r.exit_code != 0
    assert "a" not in deployed_models()

    deploy("r1", "a", check=False)
    r = cli.invoke(app, ["deployed", "--json"])
    assert json.loads(r.output)["a"]["run"] == "r1"

    r = cli.invoke(app, ["undeploy", "a"])
    assert r.exit_code == 0 and "removed local/a" in r.output
    r = cli.invoke(app, ["undeploy", "a"])
    assert isinstance(r.exception, NotFoundError)
