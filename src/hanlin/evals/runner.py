"""Running an evaluation: a stored dataset version against a target, one example at a time,
each result stored as soon as it is scored — so a run that is stopped (Ctrl-C), killed or
fails can be resumed by id, and skips what it finished (an example that errored is retried).

``prepare_run`` records the run (its dataset version, target, metrics, judge and prompt
versions); ``execute`` answers and scores the examples still to do and writes the aggregates.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hanlin.errors import HanlinError, InvalidInputError, NotFoundError, StepError
from hanlin.evals.base import Dataset, EvalStore, RunInfo, find_run
from hanlin.evals.datasets import LoadedDataset, load_dataset
from hanlin.evals.imports import report_of
from hanlin.evals.judge import Judge
from hanlin.evals.metrics import METRICS, select_metrics
from hanlin.evals.owner import process_owner
from hanlin.evals.scorer import aggregate, score
from hanlin.evals.targets import ANSWER_PROMPT, Output, Target, open_target
from hanlin.models.gateway import Gateway

Progress = Callable[[int, int, str], None]

#: what a judge-only metric needs; what replaces the judged citation metrics without one
_LEXICAL = {"citation_recall": "citation_recall_lexical"}
_LEXICAL["citation_precision"] = "citation_precision_lexical"


@dataclass(slots=True)
class Plan:
    """A run ready to execute: the stored run, its examples, the open target and judge."""

    run: RunInfo
    dataset: Dataset
    target: Target
    judge: Judge | None
    metrics: list[str]
    #: metric → why it does not run (no judge; replaced by the lexical proxy)
    not_run: dict[str, str] = field(default_factory=dict)

    def close(self) -> None:
        self.target.close()


def resolve_dataset(
    store: EvalStore, ref: str, *, name: str | None = None, split: str | None = None
) -> tuple[Dataset, LoadedDataset | None]:
    """A stored dataset (``name`` or ``name@version``), or a file/folder read and stored as a
    version of ``name`` (default: the file's name). The second value is what was read from a
    path (its skipped rows and notes), None for a stored dataset."""
    path = Path(ref).expanduser()
    if path.exists():
        loaded = load_dataset(path, split=split)
        if not loaded.examples:
            reasons = "; ".join(str(p) for p in loaded.problems[:3])
            raise InvalidInputError(
                f"{ref} has no usable examples ({len(loaded.problems)} bad rows: {reasons})",
                hint="fix the rows listed; `hanlin eval datasets import` lists them all",
            )
        info = store.put_dataset(
            name or loaded.name, loaded.examples, loaded.source, report_of(loaded)
        )
        return store.dataset(info.name, info.version), loaded
    base, _, version = ref.partition("@")
    if version and not version.isdigit():
        raise InvalidInputError(f"bad dataset version in {ref!r}", hint="use NAME@1, NAME@2 …")
    try:
        return store.dataset(base, int(version) if version else None), None
    except NotFoundError:
        if "/" in ref or Path(ref).suffix:
            raise NotFoundError(
                f"no file, folder or stored dataset {ref!r}",
                hint="check the path (relative to the current directory), or give a stored "
                "dataset's name (`hanlin eval datasets ls`)",
            ) from None
        raise


def plan_metrics(
    spec: str | list[str] | None, target: Target, judge: Judge | None
) -> tuple[list[str], dict[str, str]]:
    """The metrics a run computes and those it cannot, with the reason."""
    chosen = select_metrics(spec, target.metrics)
    not_run: dict[str, str] = {}
    for name in list(chosen):
        if METRICS[name].needs_judge and judge is None:
            chosen.remove(name)
            lexical = _LEXICAL.get(name)
            not_run[name] = "needs --judge" + (f" (lexical proxy: {lexical})" if lexical else "")
        elif judge is not None and name in _LEXICAL.values() and not spec:
            chosen.remove(name)  # judged citation metrics replace the proxy by default
    return chosen, not_run


def prepare_run(
    store: EvalStore,
    dataset: Dataset,
    target_spec: str,
    gateway: Gateway,
    *,
    metrics: str | list[str] | None = None,
    limit: int | None = None,
    name: str | None = None,
    judge: str | None = None,
    model: str | None = None,
    judge_label: str = "production",
) -> Plan:
    """Record a new run of ``target_spec`` on ``dataset`` (nothing is answered yet). The
    judge's prompts are read at ``judge_label`` in the prompt registry."""
    if limit is not None and limit < 1:
        raise InvalidInputError("--limit must be at least 1", hint="or leave it out for all")
    target = open_target(target_spec, gateway, model=model)
    try:
        the_judge = Judge(gateway, judge, label=judge_label) if judge else None
        chosen, not_run = plan_metrics(metrics, target, the_judge)
    except BaseException:
        target.close()
        raise
    total = min(len(dataset.examples), limit or len(dataset.examples))
    run_id = "r-" + secrets.token_hex(4)
    config: dict[str, Any] = {
        "metrics": chosen,
        "not_run": not_run,
        "limit": limit,
        "judge": judge,
        "judge_prompts": the_judge.versions if the_judge else None,
        "model": model,
        "answer_prompt": None if target_spec.startswith(("kb:", "agent:")) else ANSWER_PROMPT[0],
        "dataset_source": dataset.info.source,
    }
    run = store.create_run(
        RunInfo(
            id=run_id,
            name=name or f"{dataset.info.name} on {target_spec}",
            dataset=dataset.info.ref,
            target=target_spec,
            config=config,
            total=total,
        )
    )
    return Plan(run, dataset, target, the_judge, chosen, not_run)


def reopen_run(store: EvalStore, run_id: str, gateway: Gateway) -> Plan:
    """The plan of a stored run, to finish it (same dataset version, target and metrics)."""
    run = find_run(store, run_id)
    name, _, version = run.dataset.partition("@")
    dataset = store.dataset(name, int(version))
    cfg = run.config
    target = open_target(run.target, gateway, model=cfg.get("model"))
    try:
        # the prompt versions the run started with, wherever the labels point now
        pinned = cfg.get("judge_prompts")
        the_judge = Judge(gateway, cfg["judge"], versions=pinned) if cfg.get("judge") else None
    except BaseException:
        target.close()
        raise
    return Plan(run, dataset, target, the_judge, list(cfg["metrics"]), dict(cfg["not_run"]))


def execute(
    store: EvalStore,
    plan: Plan,
    *,
    progress: Progress | None = None,
    stop: Callable[[], bool] | None = None,
) -> RunInfo:
    """Answer and score every example of the run not yet finished, storing each result, then
    the aggregates. Stopped by ``stop`` (checked between examples) or Ctrl-C, the run is left
    ``interrupted``; an unexpected failure leaves it ``failed`` and raises
    :class:`~hanlin.errors.StepError` naming the example."""
    run = plan.run
    examples = plan.dataset.examples[: run.total]
    finished = {r.example_id for r in store.results(run.id) if r.error is None}
    # this process runs it now: another one finds it orphaned only once this one is gone
    owned = store.run(run.id).config | {"owner": process_owner()}
    store.update_run(run.id, status="running", config=owned)
    done = sum(ex.id in finished for ex in examples)
    if progress:
        progress(done, len(examples), "")
    current = ""
    try:
        for position, ex in enumerate(examples):
            if ex.id in finished:
                continue
            if stop is not None and stop():
                return store.update_run(run.id, status="interrupted")
            current = ex.id
            try:
                out = plan.target.run(ex)
            except HanlinError as exc:
                out = Output(error=exc.message)
            store.put_result(run.id, score(position, ex, out, plan.metrics, plan.judge))
            done += 1
            if progress:
                progress(done, len(examples), ex.id)
    except KeyboardInterrupt:
        store.update_run(run.id, status="interrupted")
        raise
    except Exception as exc:
        store.update_run(run.id, status="failed")
        raise StepError("evaluation", f"example {current}", exc, detail=run.target) from exc
    results = store.results(run.id)
    return store.update_run(run.id, status="done", aggregates=aggregate(results, plan.metrics))
