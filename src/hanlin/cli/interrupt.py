"""Ctrl-C during long work: the first press asks the work to stop cleanly (after the file in
hand, with everything read so far stored); a second press aborts at once."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from rich.console import Console


@contextmanager
def stop_on_interrupt(console: Console, current: str = "file") -> Iterator[threading.Event]:
    """Yield an event that the first Ctrl-C sets (pass ``event.is_set`` as ``stop``);
    ``current`` names the unit of work finished before stopping ("file", "example")."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop  # signal handlers can only be installed from the main thread
        return

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        console.print(f"[yellow]stopping after the current {current}… (Ctrl-C again to abort)[/]")

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
