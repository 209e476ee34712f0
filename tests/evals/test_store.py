"""The evaluation store as a library, one conformance test over both backends (SQLite in the
app directory, PostgreSQL): datasets versioned by content, runs with per-example results that
survive a reopen, upserts, unknown names and ids, and two writers numbering versions at once."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hanlin.errors import InvalidInputError, NotFoundError
from hanlin.evals.base import (
    EvalStore,
    Example,
    ExampleResult,
    ImportReport,
    RunInfo,
    find_run,
)
from hanlin.evals.owner import orphaned_runs, owner_gone, process_owner
from hanlin.evals.postgres import PostgresEvalStore
from hanlin.evals.sqlite import SqliteEvalStore


def _open(kind: str, where: str) -> EvalStore:
    return PostgresEvalStore(where) if kind == "postgres" else SqliteEvalStore(Path(where))


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    if request.param == "postgres":
        yield "postgres", request.getfixturevalue("pg_url")
    else:
        yield "sqlite", str(tmp_path / "evals.sqlite")


def examples(*questions: str) -> list[Example]:
    return [
        Example(id=f"q{i}", question=q, answers=[f"a{i}"], meta={"n": i})
        for i, q in enumerate(questions)
    ]


def test_the_store_conforms(backend: tuple[str, str]) -> None:
    store = _open(*backend)
    # versions by content: the same examples are the same version, a change is the next one
    v1 = store.put_dataset("qa", examples("一?", "two?"), "qa.jsonl")
    assert (v1.ref, v1.count) == ("qa@1", 2)
    assert store.put_dataset("qa", examples("一?", "two?"), "elsewhere.jsonl") == v1
    v2 = store.put_dataset("qa", examples("一?", "two?", "three?"), "qa.jsonl")
    assert v2.ref == "qa@2" and v2.hash != v1.hash
    assert store.put_dataset("qa", examples("一?", "two?"), "qa.jsonl").ref == "qa@1"
    store.put_dataset("other", examples("x?"), "x.csv")
    assert [d.ref for d in store.datasets()] == ["other@1", "qa@1", "qa@2"]
    assert [d.ref for d in store.datasets("qa")] == ["qa@1", "qa@2"]
    newest = store.dataset("qa")
    assert newest.info == v2 and [e.question for e in newest.examples] == ["一?", "two?", "three?"]
    assert store.dataset("qa", 1).examples == examples("一?", "two?")  # every field kept
    with pytest.raises(NotFoundError, match="no dataset qa@9") as err:
        store.dataset("qa", 9)
    assert "qa@1, qa@2" in (err.value.hint or "")
    with pytest.raises(NotFoundError, match="no dataset nope"):
        store.dataset("nope")
    with pytest.raises(InvalidInputError, match="invalid dataset name"):
        store.put_dataset("has space", examples("x?"), "x")
    with pytest.raises(InvalidInputError, match="no examples"):
        store.put_dataset("empty", [], "x")

    # runs and results
    run = store.create_run(
        RunInfo(
            id="r-1",
            name="baseline",
            dataset="qa@2",
            target="kb:docs",
            total=3,
            config={"metrics": ["f1"]},
        )
    )
    assert run.status == "running" and run.created_at > 0
    store.put_result("r-1", ExampleResult(example_id="q1", position=1, scores={"f1": 0.5}))
    store.put_result("r-1", ExampleResult(example_id="q0", position=0, scores={"f1": None}))
    store.put_result(
        "r-1", ExampleResult(example_id="q1", position=1, output="again", scores={"f1": 1.0})
    )
    assert store.run("r-1").done == 2
    got = store.results("r-1")
    assert [(r.example_id, r.scores["f1"]) for r in got] == [("q0", None), ("q1", 1.0)]
    assert got[1].output == "again"
    done = store.update_run("r-1", status="done", aggregates={"metrics": {"f1": {"mean": 1.0}}})
    assert done.status == "done" and done.aggregates["metrics"]["f1"]["mean"] == 1.0
    assert done.updated_at >= run.updated_at and done.config == {"metrics": ["f1"]}
    store.create_run(RunInfo(id="r-2", name="baseline", dataset="qa@1", target="m"))
    assert [r.id for r in store.runs()] == ["r-2", "r-1"]
    assert find_run(store, "baseline").id == "r-2" and find_run(store, "r-1").id == "r-1"
    with pytest.raises(NotFoundError, match="no evaluation run"):
        store.run("r-404")
    with pytest.raises(NotFoundError):
        store.update_run("r-404", status="done")
    store.delete_run("r-1")
    with pytest.raises(NotFoundError):
        store.results("r-1")
    store.close()

    # what was written is there for another process (a reopened store)
    again = _open(*backend)
    assert [d.ref for d in again.datasets()] == ["other@1", "qa@1", "qa@2"]
    assert [r.id for r in again.runs()] == ["r-2"]
    again.close()


def test_an_import_report_is_kept_with_its_version(backend: tuple[str, str]) -> None:
    """The rows an import skipped stay with the version it made, on both backends; importing
    the same content again keeps the first report."""
    store = _open(*backend)
    report = ImportReport(skipped=2, problems=["qa.jsonl:3: not JSON", "qa.jsonl:5: no question"])
    report.notes.append("fields kept as metadata: n")
    v1 = store.put_dataset("qa", examples("一?"), "qa.jsonl", report)
    assert v1.report == report
    assert store.dataset("qa", 1).info.report == report
    assert store.datasets("qa")[0].report == report
    assert store.put_dataset("qa", examples("一?"), "qa.jsonl", ImportReport()).report == report
    assert store.put_dataset("qa", examples("two?"), "qa.jsonl").report == ImportReport()
    store.close()


def test_two_writers_importing_one_name_number_versions_without_gaps(
    backend: tuple[str, str],
) -> None:
    stores = [_open(*backend) for _ in range(4)]
    refs: list[str] = []

    def put(i: int) -> None:
        for j in range(3):
            refs.append(stores[i].put_dataset("race", examples(f"w{i} {j}?"), "t").ref)

    threads = [threading.Thread(target=put, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(refs, key=lambda r: int(r.split("@")[1])) == [f"race@{n}" for n in range(1, 13)]
    for s in stores:
        s.close()


def test_an_orphaned_run_is_taken_over_by_one_claimant(backend: tuple[str, str]) -> None:
    """A run whose owner is gone is orphaned; of several processes claiming it with what
    they read, exactly one wins (a conditional UPDATE on both backends)."""
    store = _open(*backend)
    store.put_dataset("qa", examples("one?"), "qa.jsonl")
    mine = store.create_run(
        RunInfo(
            id="r-mine", name="n", dataset="qa@1", target="m", config={"owner": process_owner()}
        )
    )
    gone = store.create_run(
        RunInfo(id="r-gone", name="n", dataset="qa@1", target="m", config={"owner": "h:1:x"})
    )
    # a pid that cannot exist on this host, then one that does, under another token
    dead = f"{socket.gethostname()}:999999999:abcd"
    alive_other_token = f"{socket.gethostname()}:{os.getpid()}:other"
    assert owner_gone(dead, mine.updated_at) and owner_gone(alive_other_token, mine.updated_at)
    assert not owner_gone(process_owner(), mine.updated_at)
    assert not owner_gone(None, mine.updated_at)  # no owner: only once nothing moved for long
    assert owner_gone("elsewhere:1:x", mine.updated_at - 10_000)
    store.update_run(gone.id, config={"owner": dead})
    found = orphaned_runs(store)
    assert [r.id for r in found] == ["r-gone"]
    run = found[0]
    wins = [store.claim_run(run.id, f"claimant-{i}", run.updated_at) for i in range(3)]
    assert wins == [True, False, False]
    assert store.run(run.id).config["owner"] == "claimant-0"
    store.update_run(run.id, status="interrupted")
    fresh = store.run(run.id)
    assert not store.claim_run(run.id, "late", fresh.updated_at)  # only running runs
