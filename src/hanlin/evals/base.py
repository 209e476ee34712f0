"""What an evaluation is made of — examples, datasets, runs and per-example results — and the
small protocol every evaluation store implements (SQLite in the app directory, PostgreSQL with
``database_url``), so the runner, the CLI and a future web page never depend on one backend.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

RunStatus = Literal["running", "interrupted", "failed", "done"]


class ExpectedCall(BaseModel):
    """A tool call an agent should make: the tool's name, and the arguments that must match
    (only those given are compared; none given: any arguments)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)


class Example(BaseModel):
    """One evaluation question.

    ``answers`` are the gold answers (any one counts); ``relevant`` the gold documents for
    retrieval (document id → graded relevance, from BEIR qrels); ``should_refuse`` marks a
    question the target must decline (unanswerable from its sources); ``expected_tools`` the
    tool calls an agent should make; ``context`` is given to a plain model with the question.
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    question: str = Field(min_length=1)
    answers: list[str] = Field(default_factory=list)
    context: str | None = None
    relevant: dict[str, int] = Field(default_factory=dict)
    should_refuse: bool = False
    expected_tools: list[ExpectedCall] | None = None
    meta: dict[str, Any] = Field(default_factory=dict)


def content_hash(examples: list[Example]) -> str:
    """The hash a dataset version is known by: its examples, in order, as canonical JSON."""
    digest = hashlib.sha256()
    for ex in examples:
        line = json.dumps(ex.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()


#: skipped rows an import report keeps word for word (the rest are counted)
KEPT_PROBLEMS = 200


class ImportReport(BaseModel):
    """What the import that stored a dataset version left out: the rows skipped, each as
    ``file:line: reason`` (the first :data:`KEPT_PROBLEMS`), how many in all, and notes a user
    should see (fields kept as metadata, examples without gold answers)."""

    skipped: int = 0
    problems: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class DatasetInfo(BaseModel):
    """A stored dataset version, without its examples; ``report`` is its import's."""

    name: str
    version: int
    hash: str
    source: str
    count: int
    created_at: float
    report: ImportReport = Field(default_factory=ImportReport)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


class Dataset(BaseModel):
    info: DatasetInfo
    examples: list[Example]


class RunInfo(BaseModel):
    """An evaluation run: what was evaluated (dataset version and target), how (``config``:
    metrics, judge, limits), how far it got, and its aggregates once scored."""

    id: str
    name: str
    dataset: str  # name@version
    target: str
    config: dict[str, Any] = Field(default_factory=dict)
    status: RunStatus = "running"
    total: int = 0
    done: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0
    aggregates: dict[str, Any] = Field(default_factory=dict)


class ExampleResult(BaseModel):
    """What the target did on one example and how it scored. ``scores`` maps a metric to its
    value, or None when the metric does not apply to this example (no gold answer, no qrels)
    or could not be judged."""

    example_id: str
    position: int
    output: str = ""
    refused: bool | None = None
    error: str | None = None
    latency_ms: float = 0.0
    cost_usd: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    scores: dict[str, float | None] = Field(default_factory=dict)
    #: what a reader of the report needs: retrieved ids, citations, tool calls, judge notes
    details: dict[str, Any] = Field(default_factory=dict)


@runtime_checkable
class EvalStore(Protocol):
    """Datasets (versioned by content) and runs with their per-example results.

    Unknown names and ids raise :class:`~hanlin.errors.NotFoundError`. Every change is one
    transaction; results are written one example at a time, so an interrupted run keeps
    what it finished."""

    def put_dataset(
        self,
        name: str,
        examples: list[Example],
        source: str,
        report: ImportReport | None = None,
    ) -> DatasetInfo:
        """Store a dataset as a new version of ``name`` with the report of the import that
        read it — or, when a version of ``name`` with the same content exists, return that
        version unchanged (its own report kept)."""
        ...

    def datasets(self, name: str | None = None) -> list[DatasetInfo]:
        """Every stored version (of ``name``, or of all datasets), newest name/version last."""
        ...

    def dataset(self, name: str, version: int | None = None) -> Dataset:
        """A version of a dataset with its examples (the newest when ``version`` is None)."""
        ...

    def create_run(self, run: RunInfo) -> RunInfo: ...

    def run(self, run_id: str) -> RunInfo: ...

    def runs(self, limit: int = 50) -> list[RunInfo]:
        """Runs, newest first."""
        ...

    def update_run(
        self,
        run_id: str,
        *,
        status: RunStatus | None = None,
        aggregates: dict[str, Any] | None = None,
        config: dict[str, Any] | None = None,
    ) -> RunInfo: ...

    def claim_run(self, run_id: str, owner: str, seen: float) -> bool:
        """Record ``owner`` as the process running ``run_id``, only if the run is still
        ``running`` with ``updated_at == seen`` (atomic: one taker wins)."""
        ...

    def put_result(self, run_id: str, result: ExampleResult) -> None:
        """Record one example's result (replacing an earlier one for the same example)."""
        ...

    def results(self, run_id: str) -> list[ExampleResult]:
        """A run's results in dataset order."""
        ...

    def delete_run(self, run_id: str) -> None: ...

    def close(self) -> None: ...


def find_run(store: EvalStore, ref: str) -> RunInfo:
    """A run by id, or the newest run named ``ref``; raises
    :class:`~hanlin.errors.NotFoundError` for neither."""
    from hanlin.errors import NotFoundError

    try:
        return store.run(ref)
    except NotFoundError:
        named = [r for r in store.runs(limit=10_000) if r.name == ref]
        if named:
            return named[0]
        raise
