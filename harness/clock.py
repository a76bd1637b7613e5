"""The one clock: `time.perf_counter_ns()`, and waiting on an absolute schedule against it."""

from __future__ import annotations

import asyncio
import time

now_ns = time.perf_counter_ns


async def sleep_until(deadline_ns: int) -> None:
    """Sleep until an absolute `perf_counter_ns()` deadline (no drift across many waits)."""
    delay = deadline_ns - time.perf_counter_ns()
    if delay > 0:
        await asyncio.sleep(delay / 1e9)
