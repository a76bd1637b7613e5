"""The caller's ear during a call: when will the agent be heard, and when is it quiet.

This is the coarse, online view (5 ms blocks, fixed threshold) the script reacts to, e.g. to
time a barge-in. Metrics never use it: they are computed afterwards, sample-accurately, from
the recorded timeline.
"""

from __future__ import annotations

import asyncio
import bisect
import time

import numpy as np

from harness.audio.frames import SAMPLE_NS, db_to_amplitude

BLOCK = 80  # 5 ms at 16 kHz
ONLINE_THRESHOLD_DBFS = -40.0


class Listener:
    """Plays received audio out in real time (in model) and indexes its loud 5 ms blocks."""

    def __init__(self, threshold_dbfs: float = ONLINE_THRESHOLD_DBFS):
        self._thr_sq = db_to_amplitude(threshold_dbfs) ** 2
        self._loud: list[int] = []  # heard start time of each loud block, increasing
        self.heard_end_ns = 0
        self.changed = asyncio.Event()

    def feed(self, arrival_ns: int, samples: np.ndarray) -> None:
        start = max(arrival_ns, self.heard_end_ns)
        self.heard_end_ns = start + int(len(samples) * SAMPLE_NS)
        n = len(samples) // BLOCK
        if n:
            x = samples[: n * BLOCK].astype(np.float32).reshape(n, BLOCK) / 32768.0
            loud = np.flatnonzero((x * x).mean(axis=1) >= self._thr_sq)
            self._loud.extend(int(start + i * BLOCK * SAMPLE_NS) for i in loud)
        self._wake()

    def clear(self, at_ns: int) -> None:
        """Queued audio was dropped: nothing is heard after `at_ns`."""
        self.heard_end_ns = min(self.heard_end_ns, at_ns)
        del self._loud[bisect.bisect_left(self._loud, at_ns):]
        self._wake()

    def _wake(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    def first_loud_after(self, t_ns: int) -> int | None:
        i = bisect.bisect_left(self._loud, t_ns)
        return self._loud[i] if i < len(self._loud) else None

    @property
    def last_loud_end_ns(self) -> int:
        return self._loud[-1] + int(BLOCK * SAMPLE_NS) if self._loud else 0

    async def _wait_change(self, until_ns: int) -> None:
        timeout = (until_ns - time.perf_counter_ns()) / 1e9
        if timeout > 0:
            try:
                await asyncio.wait_for(self.changed.wait(), timeout)
            except TimeoutError:
                pass

    async def wait_onset(self, after_ns: int, deadline_ns: int) -> int | None:
        """The heard time of the agent's first loud block at or after `after_ns`, or None by the deadline."""
        while True:
            onset = self.first_loud_after(after_ns)
            if onset is not None:
                return onset
            if time.perf_counter_ns() >= deadline_ns:
                return None
            await self._wait_change(deadline_ns)

    async def wait_silence(self, since_ns: int, silence_ns: int, deadline_ns: int) -> bool:
        """Until the agent has been inaudible for `silence_ns` (counting from `since_ns` at the earliest)."""
        while True:
            target = max(self.last_loud_end_ns, since_ns) + silence_ns
            now = time.perf_counter_ns()
            if now >= target:
                return True
            if now >= deadline_ns:
                return False
            await self._wait_change(min(target, deadline_ns))
