"""One pacing timer for every call of a process, instead of one timer per call.

With a timer per call, each 20 ms frame of each call costs an event-loop timer, a future and a
task wake-up; at hundreds of calls that bookkeeping is most of the caller's CPU. The metronome
wakes on one absolute grid and sends every due frame of the calls it serves in one pass.

All calls on one tick would make the last call of the pass late by the cost of all the sends
before it (and make the agent receive in bursts), so the 20 ms frame is split into `SLOTS`
phases: each call is placed on the least-loaded phase, and one wake-up serves one phase. Wake-ups
per second are at most 50 × SLOTS whatever the number of calls; a pass holds calls / SLOTS sends.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from harness.audio.frames import FRAME_NS

SLOTS = 20
"""1 ms phases: a receive burst delays one phase's sends, not a whole frame's worth (the side-by-side
measurement against 10 phases is in docs/load-testing.md)."""


class Paced(Protocol):
    async def send_due(self, now_ns: int) -> None: ...


class Metronome:
    """Shared by the calls of one event loop; runs while it has calls."""

    def __init__(self, slots: int = SLOTS) -> None:
        self.slots, self.slot_ns = slots, FRAME_NS // slots
        self.t0_ns = time.perf_counter_ns()
        self._members: list[dict[Paced, asyncio.Future]] = [{} for _ in range(slots)]
        self._placed = [0] * slots
        """Calls given a slot and not yet finished (placed before they start pacing)."""
        self._task: asyncio.Task | None = None
        self.wakeups = 0

    def place(self, t_ns: int) -> tuple[int, int]:
        """(slot, first frame time ≥ t_ns on that slot's phase) for a new call;
        `release(slot)` when the call ends."""
        slot = min(range(self.slots), key=lambda s: self._placed[s])
        self._placed[slot] += 1
        phase = self.t0_ns + slot * self.slot_ns
        k = -(-(t_ns - phase) // FRAME_NS)
        return slot, phase + k * FRAME_NS

    async def pace(self, call: Paced, slot: int) -> None:
        """Send `call`'s frames on its slot's ticks until cancelled; a failed send raises here."""
        done = asyncio.get_running_loop().create_future()
        self._members[slot][call] = done
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        try:
            await done
        finally:
            self._members[slot].pop(call, None)

    def release(self, slot: int) -> None:
        """The call placed on `slot` has ended (whether or not it ever paced)."""
        self._placed[slot] -= 1

    def _next_tick(self, after_ns: int) -> int:
        """Index of the first tick at or after `after_ns` whose slot has calls (or -1: none has)."""
        k = -(-(after_ns - self.t0_ns) // self.slot_ns)
        for i in range(self.slots):
            if self._members[(k + i) % self.slots]:
                return k + i
        return -1

    async def _run(self) -> None:
        k = self._next_tick(time.perf_counter_ns())
        while k >= 0:
            # a slot whose time has passed is served at once, but after a yield: the receivers
            # must get a turn, or a late metronome would run slot after slot with nothing between
            tick_ns = self.t0_ns + k * self.slot_ns
            await asyncio.sleep(max(0, tick_ns - time.perf_counter_ns()) / 1e9)
            self.wakeups += 1
            for call, done in list(self._members[k % self.slots].items()):
                if done.done():
                    continue
                try:
                    # the tick's frames go now even if the timer fired a little early (uvloop's
                    # timers have millisecond resolution): skipping them would make them a frame late
                    await call.send_due(max(tick_ns, time.perf_counter_ns()))
                except (ConnectionError, OSError, ValueError) as e:  # this call's problem, not the others'
                    done.set_exception(e)
            # the next occupied slot, even if its time has passed (served late, not skipped a whole
            # frame); after a stall of more than a frame, resume one frame back from now
            k = self._next_tick(max(self.t0_ns + (k + 1) * self.slot_ns,
                                    time.perf_counter_ns() - FRAME_NS + self.slot_ns))
