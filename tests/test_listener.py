"""The caller's online ear: loud blocks at their heard times, waits that end when they should."""

import asyncio
import time

import numpy as np

from harness.audio.frames import db_to_amplitude
from harness.caller.listener import BLOCK_NS, Ear, Listener, ear


def tone(dbfs: float, n: int = 320) -> np.ndarray:
    amp = db_to_amplitude(dbfs) * 32768 * np.sqrt(2)  # a sine's RMS is amplitude / √2
    return (amp * np.sin(np.arange(n) * 2 * np.pi * 400 / 16000)).astype(np.int16)


def test_loud_blocks_are_indexed_at_their_heard_time_and_quiet_ones_are_not():
    ear = Listener(threshold_dbfs=-40)
    ear.feed(1_000_000_000, tone(-50))  # quiet: heard 1.000–1.020 s
    chunk = np.concatenate([tone(-50, 160), tone(-20, 160)])
    ear.feed(1_000_000_000, chunk)  # queued behind the first: heard from 1.020 s, loud half from 1.030 s
    assert ear.first_loud_after(0) == 1_030_000_000
    assert ear.first_loud_after(1_030_000_001) == 1_030_000_000 + BLOCK_NS
    assert ear.last_loud_end_ns == 1_040_000_000 and ear.heard_end_ns == 1_040_000_000
    ear.clear(1_035_000_000)
    assert ear.last_loud_end_ns == 1_035_000_000 and ear.first_loud_after(1_035_000_000) is None


async def test_wait_onset_wakes_on_the_first_loud_chunk():
    ear = Listener()
    start = time.perf_counter_ns()

    async def agent():
        await asyncio.sleep(0.05)
        ear.feed(time.perf_counter_ns(), tone(-60))  # quiet: no wake-up needed, none reported
        await asyncio.sleep(0.05)
        ear.feed(time.perf_counter_ns(), tone(-20))

    task = asyncio.create_task(agent())
    onset = await ear.wait_onset(start, start + 2_000_000_000)
    await task
    waited_ms = (time.perf_counter_ns() - start) / 1e6
    assert onset is not None and 90 <= (onset - start) / 1e6 <= waited_ms
    assert waited_ms < 1000  # woken by the chunk, not by the deadline
    assert await ear.wait_onset(ear.heard_end_ns, time.perf_counter_ns() + 50_000_000) is None  # nothing new


async def test_wait_silence_follows_new_audio_and_a_clear_cuts_it_short():
    ear = Listener()
    now = time.perf_counter_ns()
    ear.feed(now, tone(-20, 3200))  # 200 ms of speech heard from now
    assert await ear.wait_silence(now, 100_000_000, now + 5_000_000_000)
    assert (time.perf_counter_ns() - now) / 1e6 >= 300  # 200 ms of speech + 100 ms of silence

    now = time.perf_counter_ns()
    ear.feed(now, tone(-20, 16000))  # a second of speech …
    asyncio.get_running_loop().call_later(0.1, ear.clear, now + 100_000_000)  # … cut after 100 ms
    assert await ear.wait_silence(now, 100_000_000, now + 5_000_000_000)
    took_ms = (time.perf_counter_ns() - now) / 1e6
    assert 190 <= took_ms < 700, took_ms


def test_the_ear_serves_chunks_and_clears_exactly_as_feeding_each_listener_would():
    """Batched levels over many listeners (own thresholds, odd chunk lengths, clears between
    chunks) leave every listener in the state per-chunk feeding leaves it in."""
    rng = np.random.default_rng(3)
    batched = [Listener(threshold_dbfs=t) for t in (-40, -40, -30, -55)]
    direct = [Listener(threshold_dbfs=t) for t in (-40, -40, -30, -55)]
    loop = asyncio.new_event_loop()
    try:
        e = Ear(loop)
        t = 1_000_000_000
        for _ in range(400):
            i = int(rng.integers(len(batched)))
            t += int(rng.integers(0, 30_000_000))
            if rng.random() < 0.05:
                e.clear(batched[i], t)
                direct[i].clear(t)
                continue
            n = int(rng.choice([0, 50, 80, 320, 333, 640, 1000]))
            level = rng.choice([-70, -45, -35, -25])
            chunk = (rng.standard_normal(n) * db_to_amplitude(level) * 32768).astype(np.int16)
            e.feed(batched[i], t, chunk)
            direct[i].feed(t, chunk)
            if rng.random() < 0.1:
                e.serve()
        e.serve()
    finally:
        loop.close()
    for b, d in zip(batched, direct):
        assert b._loud == d._loud and b.heard_end_ns == d.heard_end_ns
    assert sum(len(d._loud) for d in direct) > 100  # the comparison saw loud blocks


async def test_the_ear_serves_after_the_reads_of_the_loop_pass():
    listener = Listener()
    ear().feed(listener, 5_000_000, tone(-20))
    assert listener.heard_end_ns == 0  # not yet: queued behind this pass
    await asyncio.sleep(0)
    assert listener.heard_end_ns == 5_000_000 + 20_000_000 and listener.first_loud_after(0) == 5_000_000
