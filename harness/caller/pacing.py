"""Absolute-schedule pacing and the harness's own health (send lateness, event-loop lag)."""

from __future__ import annotations

import asyncio
import time

import numpy as np


async def sleep_until(deadline_ns: int) -> None:
    """Sleep until an absolute `perf_counter_ns()` deadline (no drift across many waits)."""
    delay = deadline_ns - time.perf_counter_ns()
    if delay > 0:
        await asyncio.sleep(delay / 1e9)


class LoopLagMonitor:
    """Measures how late the event loop wakes a task that asked to sleep `interval_ms`."""

    def __init__(self, interval_ms: float = 10.0):
        self.interval_ns = int(interval_ms * 1e6)
        self.lags_ns: list[int] = []

    async def run(self) -> None:
        nxt = time.perf_counter_ns() + self.interval_ns
        while True:
            await sleep_until(nxt)
            now = time.perf_counter_ns()
            self.lags_ns.append(max(0, now - nxt))
            nxt = max(nxt + self.interval_ns, now + self.interval_ns // 2)

    def p99_ms(self) -> float | None:
        return float(np.percentile(self.lags_ns, 99)) / 1e6 if self.lags_ns else None
