"""The Trainer callback of a run: metrics.jsonl rows and a rich progress bar.

The bar shows step / total, the last loss, tokens per second and the ETA; every logged step
becomes one JSON row in the run's ``metrics.jsonl`` (eval rows carry ``eval_loss``).
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from transformers import TrainerCallback

from hanlin.tune.runs import Run


class RunCallback(TrainerCallback):
    """Writes metrics rows and drives the progress bar; ``elapsed_s`` continues across resumes."""

    def __init__(self, run: Run, console: Console | None = None, show: bool = True) -> None:
        self.run = run
        self.console = console or Console(stderr=True)
        self.show = show
        self.progress: Progress | None = None
        self.task: Any = None
        self.t0 = time.perf_counter()
        rows = [r for r in run.metrics() if "elapsed_s" in r]
        self.elapsed0 = float(rows[-1]["elapsed_s"]) if rows else 0.0
        self.train_time = 0.0  # seconds inside training steps (no eval, no checkpoint saving)
        self.step_start = self.t0
        self.last_time = 0.0
        self.last_tokens = 0
        self.loss: float | None = None
        self.tps: float | None = None

    def _elapsed(self) -> float:
        return round(self.elapsed0 + time.perf_counter() - self.t0, 3)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.t0 = time.perf_counter()
        self.last_tokens = int(getattr(state, "num_input_tokens_seen", 0) or 0)
        if not self.show or not state.is_world_process_zero:
            return
        self.progress = Progress(
            TextColumn(f"[bold]{self.run.id}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[tps]} tok/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
        )
        self.progress.start()
        self.task = self.progress.add_task(
            "train", total=state.max_steps, completed=state.global_step, loss="-", tps="-"
        )

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.step_start = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.train_time += time.perf_counter() - self.step_start
        if self.progress is not None:
            loss = f"{self.loss:.4f}" if self.loss is not None else "-"
            tps = f"{self.tps:,.0f}" if self.tps is not None else "-"
            self.progress.update(self.task, completed=state.global_step, loss=loss, tps=tps)

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        if not logs or not state.is_world_process_zero:
            return
        if "eval_loss" in logs:
            self.run.append_metrics({"step": state.global_step, "eval_loss": logs["eval_loss"]})
            return
        if "loss" not in logs:
            return  # the end-of-training summary
        tokens = int(getattr(state, "num_input_tokens_seen", 0) or 0)
        spent = self.train_time - self.last_time
        self.tps = (tokens - self.last_tokens) / spent if tokens and spent > 0 else None
        self.last_time, self.last_tokens = self.train_time, tokens
        self.loss = float(logs["loss"])
        self.run.append_metrics(
            {
                "step": state.global_step,
                "epoch": round(float(state.epoch or 0.0), 4),
                "loss": self.loss,
                "lr": logs.get("learning_rate"),
                "tokens_per_s": round(self.tps, 1) if self.tps is not None else None,
                "elapsed_s": self._elapsed(),
            }
        )

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            self.run.update(steps=state.global_step)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step)
            self.progress.stop()
            self.progress = None
