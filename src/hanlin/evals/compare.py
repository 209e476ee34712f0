"""Comparing two runs: per metric, the mean difference B − A over the examples both scored,
with a paired bootstrap 95% interval (seeded: the same runs give the same interval), and the
examples whose scores changed most."""

from __future__ import annotations

from dataclasses import dataclass, field

from hanlin.errors import NotFoundError
from hanlin.evals.base import EvalStore, ExampleResult, RunInfo, find_run
from hanlin.evals.metrics import METRICS
from hanlin.evals.stats import SEED, paired_delta_ci


@dataclass(slots=True)
class MetricDelta:
    """One metric of two runs on their shared examples."""

    name: str
    a: float
    b: float
    delta: float
    lo: float
    hi: float
    n: int
    higher_is_better: bool

    @property
    def verdict(self) -> str:
        """``better`` / ``worse`` when the interval excludes 0, else ``same``."""
        if self.lo > 0 or self.hi < 0:
            up = self.lo > 0
            return "better" if up == self.higher_is_better else "worse"
        return "same"


@dataclass(slots=True)
class ChangedExample:
    """An example whose scores moved: the question, both outputs, the per-metric changes."""

    example_id: str
    question: str
    output_a: str
    output_b: str
    deltas: dict[str, float]
    #: the sum of the absolute changes of the [0, 1] metrics: how much it moved
    change: float


@dataclass(slots=True)
class Comparison:
    run_a: RunInfo
    run_b: RunInfo
    metrics: list[MetricDelta]
    changed: list[ChangedExample]
    paired: int
    only_a: int
    only_b: int
    notes: list[str] = field(default_factory=list)


def compare_runs(
    store: EvalStore, a_ref: str, b_ref: str, *, top: int = 10, seed: int = SEED
) -> Comparison:
    """Compare run B against run A (ids or names); see the module docstring."""
    run_a, run_b = find_run(store, a_ref), find_run(store, b_ref)
    results_a = {r.example_id: r for r in store.results(run_a.id)}
    results_b = {r.example_id: r for r in store.results(run_b.id)}
    shared = [k for k in results_b if k in results_a]
    notes = []
    if run_a.dataset != run_b.dataset:
        notes.append(
            f"the runs used different datasets ({run_a.dataset}, {run_b.dataset}): examples "
            "are paired by id"
        )
    for run in (run_a, run_b):
        if run.status != "done":
            notes.append(f"run {run.id} is {run.status}: only its finished examples count")
    names = [m for m in run_a.config.get("metrics", []) if m in run_b.config.get("metrics", [])]
    deltas = []
    for name in names:
        pairs = [
            (a, b)
            for k in shared
            if (a := results_a[k].scores.get(name)) is not None
            and (b := results_b[k].scores.get(name)) is not None
        ]
        found = paired_delta_ci([a for a, _ in pairs], [b for _, b in pairs], seed=seed)
        if found is None:
            continue
        mean, lo, hi = found
        deltas.append(
            MetricDelta(
                name=name,
                a=sum(a for a, _ in pairs) / len(pairs),
                b=sum(b for _, b in pairs) / len(pairs),
                delta=mean,
                lo=lo,
                hi=hi,
                n=len(pairs),
                higher_is_better=METRICS[name].higher_is_better if name in METRICS else True,
            )
        )
    questions = _questions(store, run_b)
    changed = _changed(shared, results_a, results_b, names, questions)
    return Comparison(
        run_a=run_a,
        run_b=run_b,
        metrics=deltas,
        changed=changed[:top],
        paired=len(shared),
        only_a=len(results_a) - len(shared),
        only_b=len(results_b) - len(shared),
        notes=notes,
    )


def _changed(
    shared: list[str],
    results_a: dict[str, ExampleResult],
    results_b: dict[str, ExampleResult],
    names: list[str],
    questions: dict[str, str],
) -> list[ChangedExample]:
    bounded = [n for n in names if n in METRICS and METRICS[n].unit_interval]
    out = []
    for key in shared:
        ra, rb = results_a[key], results_b[key]
        moved = {
            n: b - a
            for n in bounded
            if (a := ra.scores.get(n)) is not None
            and (b := rb.scores.get(n)) is not None
            and b != a
        }
        if moved:
            out.append(
                ChangedExample(
                    example_id=key,
                    question=questions.get(key, ""),
                    output_a=ra.output if ra.error is None else f"error: {ra.error}",
                    output_b=rb.output if rb.error is None else f"error: {rb.error}",
                    deltas=moved,
                    change=sum(abs(v) for v in moved.values()),
                )
            )
    out.sort(key=lambda c: (-c.change, c.example_id))
    return out


def _questions(store: EvalStore, run: RunInfo) -> dict[str, str]:
    name, _, version = run.dataset.partition("@")
    try:
        dataset = store.dataset(name, int(version))
    except (ValueError, NotFoundError):
        return {}
    return {ex.id: ex.question for ex in dataset.examples}
