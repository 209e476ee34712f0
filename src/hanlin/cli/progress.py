"""Rich progress bars for long work: counts, rate and ETA."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from hanlin.knowledge.ingest import ProgressCallback


@contextmanager
def progress_bar(label: str, console: Console | None = None) -> Iterator[ProgressCallback]:
    """Yield a ``(done, total, item)`` callback that drives a progress bar."""
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("[dim]{task.fields[item]}", justify="left"),
        console=console or Console(stderr=True),
        transient=False,
    )
    task = progress.add_task(label, total=None, item="", rate="")

    def update(done: int, total: int, item: str) -> None:
        elapsed = progress.tasks[0].elapsed or 0.0
        rate = f"{done / elapsed:,.1f}/s" if elapsed > 0 else ""
        progress.update(task, completed=done, total=total, item=item[-50:], rate=rate)

    with progress:
        yield update
