"""Absolute-schedule pacing and the harness's own health (send lateness, event-loop lag)."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np

from harness.clock import sleep_until


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


class CpuSteal:
    """Share of this machine's CPU time the hypervisor took away during a run (Linux /proc/stat).

    On a shared VM, frames go out late because the whole machine was paused, not because the
    harness was slow; reporting steal beside send lateness tells the two apart.
    """

    def __init__(self) -> None:
        self._start = self._read()

    @staticmethod
    def _read() -> list[int] | None:
        try:
            with open("/proc/stat") as f:
                return [int(x) for x in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None

    def percent(self) -> float | None:
        end = self._read()
        if self._start is None or end is None or len(end) < 8:
            return None
        d = [b - a for a, b in zip(self._start, end)]
        total = sum(d[:8])
        return round(100.0 * d[7] / total, 2) if total > 0 else None


class GcPauses:
    """How long the cyclic garbage collector stopped the loop, per collection (by generation).

    A full collection walks every live container object; with hundreds of calls' state in the
    heap that is a stall of many milliseconds in which no frame goes out."""

    def __init__(self) -> None:
        self.pauses_ns: list[tuple[int, int]] = []  # (generation, duration)
        self._t = 0

    def _cb(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._t = time.perf_counter_ns()
        else:
            self.pauses_ns.append((info.get("generation", -1), time.perf_counter_ns() - self._t))
            if len(self.pauses_ns) > 200_000:
                del self.pauses_ns[:100_000]

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._cb)
        return self

    def __exit__(self, *exc) -> None:
        if self._cb in gc.callbacks:
            gc.callbacks.remove(self._cb)

    def summary(self, since: int = 0) -> dict:
        """Collections and their longest pause per generation, from entry `since` on."""
        out = {}
        for gen in (0, 1, 2):
            d = [ns for g, ns in self.pauses_ns[since:] if g == gen]
            out[f"gen{gen}"] = {"n": len(d), "max_ms": round(max(d) / 1e6, 3) if d else 0.0}
        return out


T = TypeVar("T")


def loop_local(registry: dict[asyncio.AbstractEventLoop, T], make: Callable[[asyncio.AbstractEventLoop], T]) -> T:
    """The running loop's entry in `registry`, made on first use (entries of closed loops dropped):
    one shared object per event loop, e.g. the metronome and the ear of a process's calls."""
    loop = asyncio.get_running_loop()
    found = registry.get(loop)
    if found is None:
        for old in [lp for lp in registry if lp.is_closed()]:
            del registry[old]
        found = registry[loop] = make(loop)
    return found


FULL_GC_EVERY = 100
"""Young-generation collections between full ones considered (CPython's default: 10)."""


def quiet_gc() -> None:
    """For a real-time process after its setup: setup objects leave the collector's view, and full
    collections become 10× rarer. A full collection walks every live object, tens of ms with
    hundreds of calls' state in the heap, and no frame goes out on time while it runs; young
    collections stay as they are (they are short and reclaim most cycles)."""
    gc.collect()
    gc.freeze()
    g0, g1, _ = gc.get_threshold()
    gc.set_threshold(g0, g1, FULL_GC_EVERY)
