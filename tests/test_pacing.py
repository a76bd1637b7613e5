"""Pacing helpers: absolute-schedule sleeps and the harness's own health meters."""

import asyncio
import gc
import time

from harness.caller.pacing import GcPauses, LoopLagMonitor
from harness.clock import sleep_until


async def test_sleep_until_is_absolute():
    t = time.perf_counter_ns() + 30_000_000
    await sleep_until(t)
    assert time.perf_counter_ns() >= t - 1_000_000
    before = time.perf_counter_ns()
    await sleep_until(before - 10_000_000)  # in the past: no wait
    assert time.perf_counter_ns() - before < 5_000_000


def test_gc_pauses_records_each_collection_by_generation():
    gc.collect()
    gc.disable()  # the cycles must still be there when the measured collection runs
    junk = []
    for _ in range(1000):  # cycles only the collector can free
        a = []
        a.append(a)
        junk.append(a)
    del junk, a  # the last one is still named
    try:
        with GcPauses() as p:
            freed = gc.collect(2)
    finally:
        gc.enable()
    s = p.summary()
    assert freed >= 1000 and s["gen2"]["n"] == 1 and s["gen2"]["max_ms"] > 0
    assert gc.callbacks.count(p._cb) == 0  # removed on exit


async def test_loop_lag_sees_a_blocked_loop():
    mon = LoopLagMonitor(interval_ms=5)
    task = asyncio.create_task(mon.run())
    await asyncio.sleep(0.03)
    time.sleep(0.05)  # block the loop: the monitor wakes ~50 ms late
    await asyncio.sleep(0.03)
    task.cancel()
    assert max(mon.lags_ns) >= 40_000_000
