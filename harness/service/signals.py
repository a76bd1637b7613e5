"""Ctrl-C and SIGTERM end a run the same way: the calls stop, every turn already measured is
kept, and the run's files are written with status `interrupted`."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator

from harness.errors import EXIT_INTERRUPTED

EXIT_TERMINATED = 143
"""128 + SIGTERM, as a shell reports a process ended by it (its files written all the same)."""


class Stop:
    """Which signal stopped the run (None: it was not stopped)."""

    def __init__(self) -> None:
        self.signal: int | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_TERMINATED if self.signal == signal.SIGTERM else EXIT_INTERRUPTED


@contextlib.contextmanager
def stop_on_signals(stop: Stop | None = None, task: asyncio.Task | None = None) -> Iterator[Stop]:
    """While the block runs, SIGINT or SIGTERM cancels `task` (default: the current one) once;
    later signals are ignored so the measured turns are saved whatever is pressed. Replaces
    asyncio.run's own SIGINT handling, which would raise KeyboardInterrupt after the fact."""
    loop = asyncio.get_running_loop()
    task = task or asyncio.current_task()
    stop = stop if stop is not None else Stop()

    def on_signal(sig: int) -> None:
        if stop.signal is None:
            stop.signal = sig
            task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        yield stop
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
