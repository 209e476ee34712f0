"""The prompt optimiser: search a prompt's instruction and few-shot examples against an evaluation
dataset, within a budget of model calls and dollars, and save the best as a new version.

In the spirit of DSPy (BootstrapFewShotWithRandomSearch, MIPRO's instruction proposals), in two
stages over the *optimise* split, after setting a *validation* split aside:

1. **instructions** — the prompt's own, a few built-in rewrites (:mod:`hanlin.evals.proposals`)
   and instructions proposed by the target model itself or a ``proposer`` (none from a base
   model: it cannot write one), each scored with the stage's examples;
2. **examples** — random few-shot sets (seeded) drawn from the optimise split's example pool,
   each shown as real turns (``user`` input, ``assistant`` gold answer) under the best
   instruction so far.

Each candidate is scored on the same examples (the optimise split less the pool), with the
evaluation metrics of :mod:`hanlin.evals.scoring` (F1 with CJK characters as tokens by
default). The best is then run with the baseline on the validation split, and the gain is
reported with a paired bootstrap interval. Every model call counts: proposals, scoring and
validation. The calls validation needs are set aside first, a candidate is started only when
the budget can score it on every example, and no call starts once the dollars are spent — so
``budget_calls`` is never exceeded.

A candidate is a prompt version like any other: its text is written as turns
(:mod:`hanlin.prompts.messages`), so what was scored is exactly what is saved and what the
playground and ``hanlin prompt render`` show.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hanlin.errors import HanlinError, InvalidInputError
from hanlin.evals.base import Example
from hanlin.evals.prompt_parts import example_turns, literal, split_prompt, values_of
from hanlin.evals.proposals import (
    Lang,
    builtin_rewrites,
    clean_proposal,
    language_of,
    proposal_messages,
)
from hanlin.evals.scoring import best_of, contains_answer, exact_match, f1_score
from hanlin.evals.stats import mean_ci, paired_delta_ci
from hanlin.models.base_models import is_base_model
from hanlin.models.gateway import Gateway
from hanlin.prompts.base import PRODUCTION, NewVersion, PromptVersion, check_label
from hanlin.prompts.library import PromptLibrary
from hanlin.prompts.messages import render_messages
from hanlin.prompts.template import declare, fields

Metric = Literal["f1", "exact_match", "contains"]
SCORERS: dict[str, Callable[[str, str], float]] = {
    "f1": f1_score,
    "exact_match": exact_match,
    "contains": contains_answer,
}
#: (done, total, what) after every model call
Progress = Callable[[int, int, str], None]


class OptimizeOptions(BaseModel):
    """How to search. ``shots`` is the range of few-shot examples a candidate may show;
    ``score_size`` the optimise-split examples each candidate is scored on (default: those
    outside the example pool, at most 30)."""

    model_config = ConfigDict(extra="forbid")

    target: str = Field(min_length=1)
    metric: Metric = "f1"
    budget_calls: int | None = Field(default=None, ge=1)
    budget_usd: float | None = Field(default=None, gt=0)
    val_split: float = Field(default=0.3, gt=0, lt=1)
    candidates: int = Field(default=8, ge=1, le=500)
    shots: tuple[int, int] = (0, 3)
    seed: int = 0
    proposer: str | None = None
    proposals: int = Field(default=3, ge=0, le=50)
    score_size: int | None = Field(default=None, ge=1)
    max_tokens: int = Field(default=64, ge=1, le=100_000)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    #: the version to improve: a number, else a label (default production)
    version: int | None = Field(default=None, ge=1)
    prompt_label: str | None = None
    #: point this label at the saved winner (none by default)
    label: str | None = None


class CandidateResult(BaseModel):
    """One prompt tried: how it was made, its text, and its score on the scoring examples
    (None when the budget ran out before it)."""

    index: int
    stage: Literal["baseline", "instruction", "examples"]
    instruction: str
    shots: list[str] = Field(default_factory=list)
    text: str
    score: float | None = None
    n: int = 0
    errors: int = 0
    status: Literal["scored", "skipped: budget", "skipped: stopped"] = "scored"


class Interval(BaseModel):
    mean: float
    low: float
    high: float


class Validation(BaseModel):
    """The baseline and the winner on the validation split, and the paired gain."""

    n: int
    baseline: Interval | None
    winner: Interval | None
    gain: Interval | None


class OptimizeReport(BaseModel):
    """What a run of the optimiser tried, found, spent and saved."""

    prompt: str
    baseline_version: int
    saved_version: int | None = None
    saved_created: bool = False
    label: str | None = None
    target: str
    proposer: str | None
    metric: str
    dataset: str
    splits: dict[str, int]
    candidates: list[CandidateResult]
    winner: int
    validation: Validation
    calls: dict[str, int | None]
    cost_usd: dict[str, float | None]
    elapsed_s: float
    notes: list[str] = Field(default_factory=list)


def parse_shots(text: str) -> tuple[int, int]:
    """``3`` (0 to 3 examples) or ``1..3`` → ``(low, high)``."""
    low, sep, high = text.partition("..")
    try:
        lo, hi = (int(low), int(high)) if sep else (0, int(low))
    except ValueError:
        raise InvalidInputError(
            f"cannot read --shots {text!r}", hint="give the most examples (3) or a range (0..3)"
        ) from None
    if not 0 <= lo <= hi <= 32:
        raise InvalidInputError(
            f"--shots {text} is not a range of 0 to 32 examples", hint="e.g. --shots 0..3"
        )
    return lo, hi


# --- the search ------------------------------------------------------------------------------


class _Spend:
    """Calls and dollars spent, against the budget."""

    def __init__(self, calls: int | None, usd: float | None) -> None:
        self.max_calls, self.max_usd = calls, usd
        self.calls = 0
        self.usd = 0.0

    def room(self, calls: int, reserve: int = 0) -> bool:
        """Whether ``calls`` more can be made, leaving ``reserve`` calls (and, by the cost per
        call so far, their dollars) for later."""
        if self.max_calls is not None and self.calls + calls + reserve > self.max_calls:
            return False
        if self.max_usd is not None:
            if self.usd >= self.max_usd:
                return False
            per_call = self.usd / self.calls if self.calls else 0.0
            return self.usd + per_call * (calls + reserve) <= self.max_usd
        return True

    def open(self) -> bool:
        return self.room(1)


@dataclass(slots=True)
class _Candidate:
    stage: Literal["baseline", "instruction", "examples"]
    instruction: str
    shots: tuple[Example, ...]
    version: PromptVersion


class Optimizer:
    """One optimisation of a prompt against examples (see the module's docstring)."""

    def __init__(
        self,
        library: PromptLibrary,
        gateway: Gateway,
        name: str,
        examples: Sequence[Example],
        options: OptimizeOptions,
        *,
        dataset: str = "",
        author: str = "local",
        progress: Progress | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> None:
        self.library, self.gateway, self.name, self.options = library, gateway, name, options
        self.dataset, self.author = dataset, author
        self.progress = progress or (lambda done, total, what: None)
        self.stop = stop or (lambda: False)
        self.notes: list[str] = []
        self.rng = random.Random(options.seed)
        self.scorer = SCORERS[options.metric]
        self.spend = _Spend(options.budget_calls, options.budget_usd)
        self.planned = 0
        self._errors = 0
        self._last_error: HanlinError | None = None
        self.examples = [e for e in examples if e.answers]
        if len(self.examples) < len(examples):
            self.notes.append(
                f"{len(examples) - len(self.examples)} examples without a gold answer left out"
            )

    # -- model calls -----------------------------------------------------------------------

    def _ask(self, messages: list[dict[str, str]], model: str, what: str, **kw: Any) -> str:
        """One counted call; a failed call is counted and raises."""
        self.spend.calls += 1
        try:
            opts = {"max_tokens": self.options.max_tokens, "temperature": self.options.temperature}
            opts |= kw
            resp = self.gateway.chat(messages, model, **opts)
        finally:
            self.progress(self.spend.calls, max(self.planned, self.spend.calls), what)
        self.spend.usd += resp.cost.usd if resp.cost else 0.0
        return resp.text

    def _scores(self, cand: _Candidate, examples: Sequence[Example], what: str) -> list[float]:
        """The candidate's per-example scores (0 for a failed call); stops early (shorter
        list) only when the dollars run out."""
        out = []
        for ex in examples:
            if not self.spend.open():
                break
            messages = render_messages(cand.version, values_of(ex, cand.version.variables))
            try:
                text = self._ask(messages, self.options.target, what)
            except HanlinError as exc:
                self._errors += 1
                self._last_error = exc
                out.append(0.0)
                continue
            out.append(best_of(self.scorer, text, ex.answers))
        return out

    # -- candidates --------------------------------------------------------------------------

    def _version(self, text: str, stage: str) -> PromptVersion:
        used = set(fields(text))
        kept = [v for v in self.baseline.variables if v.name in used]
        new = declare(NewVersion(text=text, variables=kept), self.baseline.variables)
        return PromptVersion(
            name=self.name,
            version=0,
            text=new.text,
            variables=new.variables,
            config=self.baseline.config,
            message=stage,
            author=self.author,
            created_at=0.0,
            hash=new.content_hash(),
        )

    def _candidate(
        self,
        stage: Literal["instruction", "examples"],
        instruction: str,
        shots: tuple[Example, ...],
    ) -> _Candidate:
        text = example_turns(self.parts, instruction, shots, self.baseline.variables, self._blank)
        return _Candidate(stage, instruction, shots, self._version(text, stage))

    def _instructions(self, lang: Lang) -> list[str]:
        """The instruction variants to try: built-in rewrites, then proposals (as template
        text: braces of their wording doubled)."""
        pool = builtin_rewrites(self.parts.instruction, lang, literal)
        proposer = self.options.proposer or self.options.target
        wanted = self.options.proposals
        if wanted and is_base_model(self.gateway.settings, proposer, resolve=self.gateway.resolve):
            self.notes.append(
                f"{proposer} is a base model: it cannot write instructions, so none were "
                "proposed (give --proposer a chat model); the built-in rewrites were tried"
            )
            wanted = 0
        demos = [
            (self.parts.shown(values_of(ex, self.baseline.variables) | self._blank), ex)
            for ex in self.pool[:3] or self.score_set[:3]
        ]
        reserve = self.reserve + len(self.score_set)  # at least one candidate
        for n in range(wanted):
            if self.stop() or not self.spend.room(1, reserve):
                self.notes.append(f"{wanted - n} proposals not asked for (budget or stop)")
                break
            request = proposal_messages(
                self._plain_instruction(), [(t, ex.answers[0]) for t, ex in demos], lang, n
            )
            try:
                reply = self._ask(request, proposer, "proposing", temperature=0.8, max_tokens=200)
            except HanlinError as exc:
                self.notes.append(f"proposal {n + 1} failed: {exc.message}")
                continue
            proposal = clean_proposal(reply)
            if proposal:
                pool.append(literal(proposal))
        seen = {_norm(self.parts.instruction)}
        out = []
        for text in pool:
            if _norm(text) not in seen:
                seen.add(_norm(text))
                out.append(text)
        return out

    def _plain_instruction(self) -> str:
        return self.parts.instruction.replace("{{", "{").replace("}}", "}")

    def _shot_sets(self, lo: int, hi: int, count: int) -> list[tuple[Example, ...]]:
        """``count`` distinct random example sets of ``max(lo, 1)``..``hi`` from the pool."""
        out: list[tuple[Example, ...]] = []
        seen: set[tuple[str, ...]] = set()
        low = max(lo, 1)
        if hi < low or len(self.pool) < low:
            return out
        for _ in range(count * 20):
            if len(out) == count:
                break
            size = self.rng.randint(low, min(hi, len(self.pool)))
            picked = tuple(self.rng.sample(self.pool, size))
            key = tuple(sorted(e.id for e in picked))
            if key not in seen:
                seen.add(key)
                out.append(picked)
        return out

    # -- the run -----------------------------------------------------------------------------

    def _split(self) -> None:
        o = self.options
        shuffled = list(self.examples)
        random.Random(o.seed).shuffle(shuffled)
        n_val = max(1, round(len(shuffled) * o.val_split))
        self.validation, optimise = shuffled[:n_val], shuffled[n_val:]
        hi = o.shots[1]
        n_pool = 0 if hi == 0 else max(hi, len(optimise) // 3)
        self.pool = optimise[:n_pool]
        rest = optimise[n_pool:]
        self.score_set = rest[: o.score_size or 30]
        if not self.score_set or len(self.pool) < max(o.shots[0], 1 if hi else 0):
            raise InvalidInputError(
                f"{len(self.examples)} examples with gold answers are too few to optimise "
                f"(validation {len(self.validation)}, example pool {len(self.pool)}, scoring "
                f"{len(self.score_set)})",
                hint="give a larger dataset, or lower --val-split and --shots",
            )

    def run(self) -> OptimizeReport:
        """Search, validate and save; raises :class:`InvalidInputError` for a budget too small
        to score the baseline and validate, or a prompt the examples cannot fill."""
        started = time.perf_counter()
        o = self.options
        if o.label is not None:
            check_label(o.label, settable=True)  # before the search, not after it
        label = None if o.version else (o.prompt_label or PRODUCTION)
        self.baseline = self.library.get(self.name, version=o.version, label=label)
        self.parts = split_prompt(self.baseline.text)
        self.gateway.resolve(o.target)  # an unknown model fails now
        self._split()
        self._check_fields()
        self._errors = 0
        self._last_error = None
        n = len(self.score_set)
        self.reserve = 2 * len(self.validation)
        if o.budget_calls is not None and o.budget_calls < n + self.reserve:
            raise InvalidInputError(
                f"a budget of {o.budget_calls} calls cannot score the baseline ({n} calls) and "
                f"validate ({self.reserve} calls)",
                hint=f"give --budget-calls {n + self.reserve + n} or more, or lower --score-size "
                "and --val-split",
            )
        budget_candidates = o.candidates
        if o.budget_calls is not None:
            budget_candidates = min(o.candidates, (o.budget_calls - self.reserve - n) // n)
        self.planned = n * (1 + budget_candidates) + self.reserve + o.proposals
        lang = language_of([self.baseline.text, *(e.question for e in self.score_set[:10])])

        baseline = _Candidate("baseline", self.parts.instruction, (), self.baseline)
        tried: list[tuple[_Candidate, CandidateResult]] = []

        def score(cand: _Candidate) -> None:
            index = len(tried)
            result = CandidateResult(
                index=index,
                stage=cand.stage,
                instruction=cand.instruction.replace("{{", "{").replace("}}", "}"),
                shots=[e.id for e in cand.shots],
                text=cand.version.text,
            )
            if self.stop() and index > 0:
                result.status = "skipped: stopped"
            elif not self.spend.room(n, self.reserve):
                result.status = "skipped: budget"
            else:
                errors = self._errors
                scores = self._scores(cand, self.score_set, f"candidate {index} ({cand.stage})")
                result.n, result.errors = len(scores), self._errors - errors
                result.score = sum(scores) / len(scores) if scores else None
            tried.append((cand, result))

        score(baseline)
        first = tried[0][1]
        if first.n and first.errors == first.n and self._last_error is not None:
            raise self._last_error  # every call failed: a model that cannot answer at all
        instructions = self._instructions(lang)
        self.planned = self.spend.calls + n * budget_candidates + self.reserve
        lo, hi = o.shots
        base_shots = self._shot_sets(lo, lo, 1)[0] if lo > 0 else ()
        n_examples = 0 if hi == 0 else max(o.candidates - len(instructions), o.candidates // 2)
        for text in instructions[: o.candidates - n_examples]:
            score(self._candidate("instruction", text, base_shots))
        best = self._best(tried)
        for shots in self._shot_sets(lo, hi, n_examples):
            score(self._candidate("examples", best.instruction, shots))

        winner = self._best(tried)
        validation = self._validate(baseline, winner)
        results = [r for _, r in tried]
        won = next(r for c, r in tried if c is winner)
        saved: tuple[int, bool] | None = None
        if winner is not baseline:
            saved = self._save(winner, won, results[0], validation, self.dataset)
        else:
            self.notes.append("no candidate scored above the baseline; nothing saved")
        if self._errors:
            example = self._last_error.message if self._last_error else ""
            self.notes.append(f"{self._errors} calls failed (scored 0), e.g.: {example}")
        return OptimizeReport(
            prompt=self.name,
            baseline_version=self.baseline.version,
            saved_version=saved[0] if saved else None,
            saved_created=bool(saved and saved[1]),
            label=o.label if saved else None,
            target=o.target,
            proposer=o.proposer,
            metric=o.metric,
            dataset=self.dataset,
            splits={
                "examples": len(self.examples),
                "validation": len(self.validation),
                "pool": len(self.pool),
                "scoring": n,
            },
            candidates=results,
            winner=won.index,
            validation=validation,
            calls={"used": self.spend.calls, "budget": o.budget_calls},
            cost_usd={"used": round(self.spend.usd, 6), "budget": o.budget_usd},
            elapsed_s=round(time.perf_counter() - started, 1),
            notes=self.notes,
        )

    def _check_fields(self) -> None:
        """Every required variable of the prompt has a value in the examples."""
        have = set(values_of(self.examples[0], self.baseline.variables))
        missing = [v.name for v in self.baseline.variables if v.required and v.name not in have]
        if missing:
            raise InvalidInputError(
                f"the prompt's variable '{missing[0]}' has no field in the dataset",
                hint="the examples give question, context and their metadata fields; rename "
                "the variable or give it a default",
                param="variables",
            )
        # an optional variable the examples lack renders as its default in the examples shown
        self._blank = {
            v.name: "" if v.default is None else v.default
            for v in self.baseline.variables
            if v.name not in have
        }

    def _best(self, tried: list[tuple[_Candidate, CandidateResult]]) -> _Candidate:
        """The highest score (the earliest on a tie: the baseline wins ties)."""
        scored = [(r.score, -r.index, c) for c, r in tried if r.score is not None]
        if not scored:
            return tried[0][0]
        return max(scored, key=lambda s: (s[0], s[1]))[2]

    def _validate(self, baseline: _Candidate, winner: _Candidate) -> Validation:
        base = self._scores(baseline, self.validation, "validating the baseline")
        won = base if winner is baseline else self._scores(winner, self.validation, "validating")
        n = min(len(base), len(won))
        if n < len(self.validation):
            self.notes.append(f"the dollar budget ran out: validated on {n} examples")

        def interval(values: tuple[float, float, float] | None) -> Interval | None:
            return (
                None if values is None else Interval(mean=values[0], low=values[1], high=values[2])
            )

        return Validation(
            n=n,
            baseline=interval(mean_ci(base[:n])),
            winner=interval(mean_ci(won[:n])),
            gain=interval(paired_delta_ci(base[:n], won[:n])),
        )

    def _save(
        self,
        winner: _Candidate,
        result: CandidateResult,
        base: CandidateResult,
        validation: Validation,
        dataset: str,
    ) -> tuple[int, bool]:
        """Save the winner as a new version (``label`` pointed at it when asked); returns
        its number and whether it was new (an identical latest version is reused)."""
        o = self.options
        message = (
            f"optimised for {o.metric} against {o.target} on {dataset or 'a dataset'}: "
            f"candidate {result.index} ({result.stage}, {len(result.shots)} shots), "
            f"{base.score or 0:.3f} → {result.score or 0:.3f} on {result.n} examples"
        )
        gain = validation.gain
        if gain is not None:
            message += (
                f"; validation {gain.mean:+.3f} [{gain.low:+.3f}, {gain.high:+.3f}] "
                f"(n={validation.n})"
            )
        new = NewVersion(
            text=winner.version.text,
            variables=winner.version.variables,
            config=self.baseline.config,
            message=message[:2000],
        )
        made, created = self.library.create(self.name, new, self.author, label=o.label)
        return made.version, created


def _norm(text: str) -> str:
    return " ".join(text.split())


def optimize(
    library: PromptLibrary,
    gateway: Gateway,
    name: str,
    examples: Sequence[Example],
    options: OptimizeOptions,
    **kw: Any,
) -> OptimizeReport:
    """Optimise prompt ``name`` on ``examples`` (see :class:`Optimizer`)."""
    return Optimizer(library, gateway, name, examples, options, **kw).run()
