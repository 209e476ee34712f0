"""``hanlin eval`` as a user runs it in a terminal or CI: bad rows listed, gates that fail the
job with a message naming the metric, its value and the bar, datasets imported once per
content, an interrupted run finished with ``--resume``, a comparison and a report file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hanlin.cli.main import main
from hanlin.config import Settings
from hanlin.evals import open_eval_store
from hanlin.evals.runner import execute, prepare_run, resolve_dataset
from hanlin.models.gateway import Gateway
from tests.evals.test_runs import QA, write_qa


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Exit code, stdout and stderr (whitespace folded: rich wraps long lines)."""
    try:
        code = main(args) or 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, " ".join(captured.err.split())


def test_gates_fail_the_job_naming_metric_value_and_bar(
    eval_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_qa(tmp_path, QA)
    path.write_text(path.read_text("utf-8") + "{broken\n", "utf-8")
    code, out, err = run_cli(
        ["eval", "run", str(path), "--target", "kb:docs", "--json",
         "--fail-under", "exact_match=0.5", "--fail-under", "contains=0.5"],
        capsys,
    )  # fmt: skip
    assert code == 1
    assert "gate failed: exact_match = 0.0000 is below the bar 0.5" in err
    assert "contains" not in err.split("gate failed")[-1]  # that gate passed
    assert "1 rows skipped" in err and "qa.jsonl:6: not JSON" in err
    assert "not run: citation_recall — needs --judge" in err
    run = json.loads(out)
    assert run["status"] == "done" and run["total"] == 5
    assert run["aggregates"]["metrics"]["contains"]["mean"] == 1.0

    code, out, err = run_cli(
        ["eval", "run", "qa", "--target", "kb:docs", "--metrics", "answer",
         "--fail-under", "contains=0.9", "--fail-over", "latency_p95_ms=60000"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "contains" in out and "ndcg@10" not in out  # only the answer metrics ran

    code, _, err = run_cli(
        ["eval", "run", "qa", "--target", "kb:docs", "--fail-under", "f2=0.5"], capsys
    )
    assert code == 2 and "unknown metric 'f2'" in err


def test_datasets_are_imported_once_per_content_and_listed(
    eval_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_qa(tmp_path, [*QA, {"question": ""}], name="cli-ds.jsonl")
    code, _, err = run_cli(["eval", "datasets", "import", str(path)], capsys)
    assert code == 1  # a row was skipped: CI notices
    assert "dataset cli-ds@1: 5 examples (stored)" in err and "cli-ds.jsonl:6: no question" in err
    code, _, err = run_cli(["eval", "datasets", "import", str(path)], capsys)
    assert "dataset cli-ds@1: 5 examples (unchanged, already stored)" in err
    write_qa(tmp_path, QA[:2], name="cli-ds.jsonl")
    code, _, err = run_cli(["eval", "datasets", "import", str(path)], capsys)
    assert code == 0 and "dataset cli-ds@2: 2 examples (stored)" in err
    code, out, _ = run_cli(["eval", "datasets", "show", "cli-ds@1", "--json"], capsys)
    assert [json.loads(line)["id"] for line in out.splitlines()] == [r["id"] for r in QA]
    code, out, _ = run_cli(["eval", "datasets", "ls"], capsys)
    assert "cli-ds@1" in out and "cli-ds@2" in out


def test_an_interrupted_run_is_finished_compared_and_reported(
    eval_settings: Settings,
    gateway: Gateway,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = open_eval_store(eval_settings)
    dataset, _ = resolve_dataset(store, str(write_qa(tmp_path, QA)), name="cli-resume")
    plan = prepare_run(store, dataset, "kb:docs", gateway, name="half", metrics="answer")
    stopped = execute(store, plan, stop=lambda: store.run(plan.run.id).done >= 2)
    plan.close()
    assert stopped.status == "interrupted" and stopped.done == 2

    code, _, err = run_cli(["eval", "run", "cli-resume", "--resume", stopped.id], capsys)
    assert code == 2 and "leave out DATASET and --target" in err
    code, out, err = run_cli(["eval", "run", "--resume", "half", "--json"], capsys)
    assert code == 0, err
    finished = json.loads(out)
    assert finished["id"] == stopped.id and finished["status"] == "done"
    assert f"resuming run {stopped.id} (half): 2 of 5 examples already stored" in err

    code, out, _ = run_cli(
        ["eval", "run", "cli-resume@1", "-t", "kb:docs", "--name", "full", "--json",
         "--metrics", "answer,retrieval"],
        capsys,
    )  # fmt: skip
    other = json.loads(out)["id"]
    code, out, _ = run_cli(["eval", "compare", stopped.id, other, "--json"], capsys)
    comparison = json.loads(out)
    assert [m["name"] for m in comparison["metrics"]] == ["exact_match", "f1", "contains"]
    assert all(m["delta"] == 0.0 and m["verdict"] == "same" for m in comparison["metrics"])
    code, out, _ = run_cli(["eval", "ls"], capsys)
    assert stopped.id in out and other in out

    report = tmp_path / "out" / "report.html"
    report.parent.mkdir()
    code, _, err = run_cli(["eval", "report", "half", "full", "--out", str(report)], capsys)
    assert code == 0 and "report written" in err
    page = report.read_text("utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 2


SAMPLES = Path(__file__).resolve().parents[2] / "samples"
SAMPLE_QA = Path(__file__).resolve().parents[2] / "examples" / "evals" / "sample-qa.jsonl"


@pytest.mark.slow
def test_the_readme_example_runs_offline_on_the_sample_knowledge_base(
    hanlin_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["kb", "create", "sample"], capsys)[0] == 0
    assert run_cli(["kb", "add", "sample", str(SAMPLES)], capsys)[0] == 0
    code, out, err = run_cli(
        ["eval", "run", str(SAMPLE_QA), "--target", "kb:sample", "--name", "baseline", "--json",
         "--fail-under", "contains=0.7", "--fail-under", "refusal_accuracy=0.9"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    run = json.loads(out)
    assert run["total"] == 10 and run["aggregates"]["metrics"]["recall@10"]["mean"] == 1.0
    code, _, err = run_cli(
        ["eval", "report", "baseline", "--out", str(hanlin_home / "r.html")], capsys
    )
    assert code == 0 and (hanlin_home / "r.html").read_text("utf-8").count("<svg") == 2
