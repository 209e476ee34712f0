"""Run directories under ``HANLIN_HOME/tune/runs/<run_id>/``: run.json, metrics, loss curve.

Layout (shared with :mod:`hanlin.tune.evaluate` and the export/deploy modules)::

    run.json        id, status, method, lora, qlora, base, template, created, finished, steps, …
    config.yaml     the resolved config
    metrics.jsonl   {"step","epoch","loss","lr","tokens_per_s","elapsed_s"} / {"step","eval_loss"}
    loss.png        the loss curve
    checkpoints/checkpoint-<step>/   Trainer checkpoints (resumable)
    adapter/        the final LoRA adapter + tokenizer      model/  full weights + tokenizer
    eval.json, samples.md            before/after evaluation

``run.json`` is replaced atomically. A run whose process died (``kill -9``) still says
``running`` on disk; :func:`effective_status` reports it as ``interrupted`` when its process is
gone.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hanlin.errors import InvalidInputError, NotFoundError
from hanlin.fileio import atomic_write_text
from hanlin.paths import hanlin_home

STATUSES = ("running", "done", "failed", "interrupted")


def runs_root() -> Path:
    root = hanlin_home() / "tune" / "runs"
    root.mkdir(parents=True, exist_ok=True)
    return root


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _atomic_write(path: Path, text: str) -> None:
    atomic_write_text(path, text)


@dataclass(frozen=True, slots=True)
class Run:
    """One run directory."""

    path: Path

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    def info(self) -> dict[str, Any]:
        try:
            data = json.loads((self.path / "run.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise NotFoundError(f"run {self.id} has no readable run.json ({exc})") from exc
        return dict(data)

    def update(self, **changes: Any) -> dict[str, Any]:
        data = self.info() if (self.path / "run.json").exists() else {}
        data.update(changes)
        _atomic_write(self.path / "run.json", json.dumps(data, indent=2, ensure_ascii=False))
        return data

    def metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_path.exists():
            return []
        rows = []
        for line in self.metrics_path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:  # a line cut by a kill: skip it
                continue
        return rows

    def append_metrics(self, row: dict[str, Any]) -> None:
        with self.metrics_path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")

    def truncate_metrics(self, after_step: int) -> None:
        """Drop rows logged after ``after_step`` (they are re-logged when training resumes)."""
        rows = [r for r in self.metrics() if int(r.get("step", 0)) <= after_step]
        _atomic_write(self.metrics_path, "".join(json.dumps(r) + "\n" for r in rows))

    def last_checkpoint(self) -> Path | None:
        """The newest complete checkpoint (one whose trainer_state.json was written)."""
        found = []
        for d in self.checkpoints.glob("checkpoint-*"):
            m = re.fullmatch(r"checkpoint-(\d+)", d.name)
            if m and (d / "trainer_state.json").is_file():
                found.append((int(m.group(1)), d))
        return max(found)[1] if found else None

    def artifacts(self) -> dict[str, str]:
        names = ["config.yaml", "metrics.jsonl", "loss.png", "adapter", "model"]
        names += ["eval.json", "samples.md"]
        out = {n: str(self.path / n) for n in names if (self.path / n).exists()}
        if ckpt := self.last_checkpoint():
            out["last checkpoint"] = str(ckpt)
        return out


def new_run(run_id: str | None, method: str) -> Run:
    """A fresh run directory; ``run_id`` must be unused (a generated id always is)."""
    if run_id is not None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,80}", run_id):
            raise InvalidInputError(
                f"run id '{run_id}' is not usable as a folder name",
                hint="use letters, digits, '.', '_' and '-'",
            )
        path = runs_root() / run_id
        if path.exists():
            raise InvalidInputError(
                f"run '{run_id}' already exists",
                hint=f"pick another run_id, or continue it with `hanlin tune resume {run_id}`",
            )
    else:
        stamp = datetime.now(UTC).strftime("%m%d-%H%M%S")
        path = runs_root() / f"{method}-{stamp}-{secrets.token_hex(2)}"
    path.mkdir(parents=True)
    return Run(path)


def get_run(ref: str) -> Run:
    """A run by id, unique id prefix, or path. Raises NotFoundError."""
    p = Path(ref).expanduser()
    if (p / "run.json").is_file():
        return Run(p.resolve())
    root = runs_root()
    if (root / ref / "run.json").is_file():
        return Run(root / ref)
    matches = sorted(d for d in root.glob(f"{ref}*") if (d / "run.json").is_file())
    if len(matches) == 1:
        return Run(matches[0])
    hint = "list runs with `hanlin tune ls`"
    if matches:
        raise InvalidInputError(f"'{ref}' matches {len(matches)} runs", hint=hint)
    raise NotFoundError(f"no tuning run '{ref}'", hint=hint)


def list_runs() -> list[Run]:
    """Every run, newest first."""
    runs = [Run(d) for d in runs_root().iterdir() if (d / "run.json").is_file()]
    return sorted(runs, key=lambda r: str(r.info().get("created", "")), reverse=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def effective_status(info: dict[str, Any]) -> str:
    """``running`` only while the run's process lives; a dead one reads ``interrupted``."""
    status = str(info.get("status", "?"))
    pid = info.get("pid")
    if status == "running" and isinstance(pid, int) and not _alive(pid):
        return "interrupted"
    return status


def plot_loss(run: Run) -> Path | None:
    """Draw ``loss.png`` from metrics.jsonl (training and eval loss); None without data."""
    rows = run.metrics()
    train = [(r["step"], r["loss"]) for r in rows if r.get("loss") is not None]
    evals = [(r["step"], r["eval_loss"]) for r in rows if r.get("eval_loss") is not None]
    if not train and not evals:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if train:
        ax.plot(*zip(*train, strict=True), label="train loss")
    if evals:
        ax.plot(*zip(*evals, strict=True), "o-", label="validation loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(run.id)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out = run.path / "loss.png"
    fig.savefig(out)
    plt.close(fig)
    return out
