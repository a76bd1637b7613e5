"""The caller's ear during a call: when will the agent be heard, and when is it quiet.

This is the coarse, online view (5 ms blocks, fixed threshold) the script reacts to, e.g. to
time a barge-in. Metrics never use it: they are computed afterwards, sample-accurately, from
the recorded timeline.

It runs for every received chunk of every call, so it is kept cheap: the `Ear` of an event
loop computes the block levels of every chunk its calls received in one loop pass in one numpy
pass (a handful of numpy calls per chunk cost ~6 µs, most of it per-call overhead), and waiters
are woken only when what they wait for can have changed (a loud block for `wait_onset`; a
`clear` for `wait_silence`, which otherwise just sleeps until the silence would be complete and
looks again).
"""

from __future__ import annotations

import asyncio
import bisect
import time

import numpy as np

from harness.audio.frames import SAMPLE_NS, db_to_amplitude
from harness.caller.pacing import loop_local

BLOCK = 80  # 5 ms at 16 kHz
BLOCK_NS = int(BLOCK * SAMPLE_NS)
ONLINE_THRESHOLD_DBFS = -40.0


def block_energy(samples: np.ndarray) -> np.ndarray:
    """Sum of squares (int16 units) of each whole 5 ms block of `samples`."""
    x = samples.reshape(-1, BLOCK).astype(np.float32)
    return np.einsum("ij,ij->i", x, x)


class Listener:
    """Plays received audio out in real time (in model) and indexes its loud 5 ms blocks."""

    def __init__(self, threshold_dbfs: float = ONLINE_THRESHOLD_DBFS):
        # a block is loud when its sum of squares (int16 units) reaches this
        self._thr_sum = float(db_to_amplitude(threshold_dbfs) ** 2 * BLOCK * 32768.0 ** 2)
        self._loud: list[int] = []  # heard start time of each loud block, increasing
        self.heard_end_ns = 0
        self._onset_waiters: list[asyncio.Future] = []
        self._clear_waiters: list[asyncio.Future] = []

    def feed(self, arrival_ns: int, samples: np.ndarray) -> None:
        """A received chunk: played out from `arrival_ns` or when what is queued ends."""
        n = len(samples) // BLOCK
        loud: list[int] = []
        if n:
            loud = np.flatnonzero(block_energy(samples[: n * BLOCK]) >= self._thr_sum).tolist()
        self.heard(arrival_ns, len(samples), loud)

    def heard(self, arrival_ns: int, n_samples: int, loud_blocks: list[int]) -> None:
        """`feed` with the chunk's loud 5 ms blocks (indices in the chunk) already found."""
        start = max(arrival_ns, self.heard_end_ns)
        self.heard_end_ns = start + int(n_samples * SAMPLE_NS)
        if loud_blocks:
            self._loud.extend([start + i * BLOCK_NS for i in loud_blocks])
            self._wake(self._onset_waiters)

    def clear(self, at_ns: int) -> None:
        """Queued audio was dropped: nothing is heard after `at_ns`."""
        self.heard_end_ns = min(self.heard_end_ns, at_ns)
        del self._loud[bisect.bisect_left(self._loud, at_ns):]
        self._wake(self._clear_waiters)
        self._wake(self._onset_waiters)

    @staticmethod
    def _wake(waiters: list[asyncio.Future]) -> None:
        for w in waiters:
            if not w.done():
                w.set_result(None)
        waiters.clear()

    def first_loud_after(self, t_ns: int) -> int | None:
        i = bisect.bisect_left(self._loud, t_ns)
        return self._loud[i] if i < len(self._loud) else None

    @property
    def last_loud_end_ns(self) -> int:
        return self._loud[-1] + BLOCK_NS if self._loud else 0

    async def _wait(self, waiters: list[asyncio.Future], until_ns: int) -> None:
        """Until a wake-up of `waiters` or `until_ns`, whichever comes first (one future, one timer)."""
        delay = (until_ns - time.perf_counter_ns()) / 1e9
        if delay <= 0:
            return
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        waiters.append(fut)
        timer = loop.call_later(delay, lambda: fut.done() or fut.set_result(None))
        try:
            await fut
        finally:
            timer.cancel()

    async def wait_onset(self, after_ns: int, deadline_ns: int) -> int | None:
        """The heard time of the agent's first loud block at or after `after_ns`, or None by the deadline."""
        while True:
            onset = self.first_loud_after(after_ns)
            if onset is not None:
                return onset
            if time.perf_counter_ns() >= deadline_ns:
                return None
            await self._wait(self._onset_waiters, deadline_ns)

    async def wait_silence(self, since_ns: int, silence_ns: int, deadline_ns: int) -> bool:
        """Until the agent has been inaudible for `silence_ns` (counting from `since_ns` at the earliest).
        New loud audio only moves the goal later, so this sleeps until the goal and looks again."""
        while True:
            target = max(self.last_loud_end_ns, since_ns) + silence_ns
            now = time.perf_counter_ns()
            if now >= target:
                return True
            if now >= deadline_ns:
                return False
            await self._wait(self._clear_waiters, min(target, deadline_ns))


class Ear:
    """Feeds the listeners of one event loop: chunks (and clears) are queued as they are read, and
    served in order once per loop pass, after the reads (so the level work delays no other
    call's read, nor its arrival stamp), with the levels of all queued chunks in one numpy pass."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self._queue: list[tuple[Listener, int, np.ndarray | None]] = []

    def feed(self, listener: Listener, arrival_ns: int, samples: np.ndarray) -> None:
        """`listener.feed(arrival_ns, samples)`, batched."""
        self._put((listener, arrival_ns, samples))

    def clear(self, listener: Listener, at_ns: int) -> None:
        """`listener.clear(at_ns)`, in order with the chunks before it."""
        self._put((listener, at_ns, None))

    def _put(self, item: tuple[Listener, int, np.ndarray | None]) -> None:
        if not self._queue:
            self._loop.call_soon(self.serve)
        self._queue.append(item)

    def serve(self) -> None:
        """Serve everything queued (normally run by the loop)."""
        queue, self._queue = self._queue, []
        chunks = [s[: len(s) // BLOCK * BLOCK] for _, _, s in queue if s is not None]
        blocks = [len(c) // BLOCK for c in chunks]
        loud: list[int] = []
        if sum(blocks):
            thr = np.repeat([lst._thr_sum for lst, _, s in queue if s is not None], blocks)
            loud = np.flatnonzero(block_energy(np.concatenate(chunks)) >= thr).tolist()
        first = 0  # index in `loud` of the current chunk's first loud block
        offset = 0  # block index of the current chunk's first block
        k = 0
        for listener, t_ns, samples in queue:
            if samples is None:
                listener.clear(t_ns)
                continue
            end = offset + blocks[k]
            last = bisect.bisect_left(loud, end, first)
            listener.heard(t_ns, len(samples), [i - offset for i in loud[first:last]])
            first, offset, k = last, end, k + 1


_EARS: dict[asyncio.AbstractEventLoop, Ear] = {}


def ear() -> Ear:
    """The running loop's ear."""
    return loop_local(_EARS, Ear)
