"""The shared metronome: calls spread over phase slots, every frame sent, one call's failure its own."""

import asyncio
import time

import pytest

from harness.audio.frames import FRAME_NS
from harness.caller.metronome import SLOTS, Metronome


class FrameCounter:
    """Test double for a call: counts its frames as a Call does (frames due since t0)."""

    def __init__(self, t0_ns: int, fail_after: int | None = None):
        self.t0_ns, self.sent, self.fail_after = t0_ns, [], fail_after

    async def send_due(self, now_ns: int) -> None:
        while self.t0_ns + len(self.sent) * FRAME_NS <= now_ns:
            if self.fail_after is not None and len(self.sent) >= self.fail_after:
                raise ConnectionError("peer went away")
            self.sent.append(time.perf_counter_ns())


async def test_calls_spread_over_slots_and_every_frame_goes_out_on_its_phase():
    m = Metronome()
    start = time.perf_counter_ns() + 20_000_000
    placed = [m.place(start) for _ in range(3 * SLOTS + 2)]
    slots = [s for s, _ in placed]
    assert max(slots.count(i) for i in range(SLOTS)) - min(slots.count(i) for i in range(SLOTS)) <= 1
    for slot, t0 in placed:
        assert t0 >= start and (t0 - m.t0_ns - slot * m.slot_ns) % FRAME_NS == 0  # on its own phase
    calls = [FrameCounter(t0) for _, t0 in placed]
    tasks = [asyncio.create_task(m.pace(c, s)) for c, (s, _) in zip(calls, placed)]
    await asyncio.sleep(0.4)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for c in calls:  # frames are sent in order, each at or after its own time, none skipped
        assert len(c.sent) >= 15
        assert all(sent >= c.t0_ns + n * FRAME_NS for n, sent in enumerate(c.sent))
    # one wake-up serves a slot: far fewer wake-ups than frames
    assert m.wakeups < sum(len(c.sent) for c in calls) / 2
    for s, _ in placed:
        m.release(s)
    assert m.place(start)[0] == 0  # released slots are free again


async def test_a_failed_send_ends_only_that_call():
    m = Metronome()
    t = time.perf_counter_ns() + 10_000_000
    (s1, t1), (s2, t2) = m.place(t), m.place(t)
    bad, good = FrameCounter(t1, fail_after=3), FrameCounter(t2)
    bad_task = asyncio.create_task(m.pace(bad, s1))
    good_task = asyncio.create_task(m.pace(good, s2))
    with pytest.raises(ConnectionError, match="peer went away"):
        await asyncio.wait_for(bad_task, 2)
    n = len(good.sent)
    await asyncio.sleep(0.1)
    assert len(good.sent) > n  # the other call kept its frames going
    good_task.cancel()
    await asyncio.gather(good_task, return_exceptions=True)
