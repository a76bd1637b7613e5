"""The caller engine of a load test: turnbench's asyncio callers in a process Locust never touches.

Locust patches its processes with gevent, which breaks asyncio timing and turns aiortc's codec
threads into greenlets; so every Locust process starts one of these (`python -m
harness.load.engine`) and talks to it over a Unix socket in JSON lines. Locust only asks for
calls and receives their measured turns; every timestamp is taken here, on one clock.

Requests (one JSON object a line):
  {"op": "call", "id", "index"}                     closed loop: place one call now
  {"op": "arrivals", "rate_per_s", "process", "seed", "duration_s", "prefix", "first_index",
   "max_in_flight"}                                 open loop: place calls on a schedule
  {"op": "drain", "timeout_s"}                      stop placing calls, finish or abandon the rest
  {"op": "health"}, {"op": "window_start"}, {"op": "window_stats"}  (steady-state window, for benchmarks)
Replies: {"op": "ready"}, {"op": "call_done", "id", "rows", "error"}, {"op": "health", …},
{"op": "schedule_done", "offered"} (open loop: the last arrival was placed),
{"op": "drained", "health", "abandoned"}, {"op": "refused", "id", "why"}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import time
from collections.abc import Callable

import numpy as np

from harness.audio.frames import FRAME_NS, SAMPLE_RATE
from harness.caller.pacing import CpuSteal, GcPauses, LoopLagMonitor, quiet_gc
from harness.caller.runner import LATENESS_BUDGET_MS, CallExecutor, RunOutcome
from harness.clock import sleep_until
from harness.load.engine_config import EngineConfig, EngineConfigError
from harness.transports import make_transport

CPU_BUDGET_PCT = 90.0
HANGUP_S = 5.0


def preemptions() -> int | None:
    """Times the kernel took the CPU away from this process while it could run (Linux)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("nonvoluntary_ctxt_switches:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class CpuMeter:
    """A process's CPU use, in 1-second windows (a saturated engine measures itself, not the
    agent). `source`: CPU seconds used so far, or None once unreadable; default this process."""

    def __init__(self, source: Callable[[], float | None] | None = None) -> None:
        self._source = source or self._cpu
        self.windows_pct: list[float] = []
        self._t0 = time.perf_counter()
        self._c0 = self._source()

    @staticmethod
    def _cpu() -> float:
        t = os.times()
        return t.user + t.system

    async def run(self) -> None:
        last_t, last_c = time.perf_counter(), self._source()
        while last_c is not None:
            await asyncio.sleep(1.0)
            t, c = time.perf_counter(), self._source()
            if c is not None:
                self.windows_pct.append(100.0 * (c - last_c) / max(1e-9, t - last_t))
            last_t, last_c = t, c

    def mean_pct(self) -> float | None:
        c = self._source()
        if c is None or self._c0 is None:
            return None
        return 100.0 * (c - self._c0) / max(1e-9, time.perf_counter() - self._t0)

    def p90_pct(self) -> float | None:
        return float(np.percentile(self.windows_pct, 90)) if self.windows_pct else None


def receive_jitter_ms(arrival_ns, lengths) -> np.ndarray:
    """|inter-arrival − the previous chunk's duration| for chunks of one stream (gaps under 100 ms):
    how unevenly the agent's audio reached this caller."""
    arr, lens = np.asarray(arrival_ns, dtype=np.int64), np.asarray(lengths, dtype=np.int64)
    if len(arr) < 2:
        return np.zeros(0)
    gaps = np.diff(arr)
    dev = gaps - lens[:-1] * 1_000_000_000 // SAMPLE_RATE
    return np.abs(dev[gaps < 100_000_000]) / 1e6


def arrival_offsets_s(rate_per_s: float, process: str, duration_s: float, seed: int) -> list[float]:
    """Intended call starts from t=0: fixed spacing, or Poisson (exponential gaps), seeded."""
    if rate_per_s <= 0:
        raise ValueError("arrival rate must be positive")
    out: list[float] = []
    if process == "fixed":
        k = 0
        while k / rate_per_s < duration_s:
            out.append(k / rate_per_s)
            k += 1
        return out
    if process != "poisson":
        raise ValueError(f"arrival process {process!r}: expected poisson or fixed")
    rng, t = random.Random(seed), 0.0
    while True:
        t += rng.expovariate(rate_per_s)
        if t >= duration_s:
            return out
        out.append(t)


class Engine:
    """Places calls on request, measures them, and reports its own health."""

    def __init__(self, config: EngineConfig, node: str):
        self.config, self.node = config, node
        self.spec = config.run_spec()
        self.outcome = RunOutcome()
        self.t0_ns, self.t0_unix = time.perf_counter_ns(), time.time()
        if config.run_started_unix is not None:  # one time axis across engines (a label, not a duration)
            self.t0_ns -= int((self.t0_unix - config.run_started_unix) * 1e9)
        self.executor = CallExecutor(self.spec, self.outcome, self.t0_ns)
        make_transport(self.spec.transport, self.spec.target_url, **self.spec.transport_options)  # imports now, not in call 1
        self.calls: set[asyncio.Task] = set()
        self.schedules: set[asyncio.Task] = set()
        self.draining = False
        self.arrivals = {"offered": 0, "started": 0, "dropped": 0, "rate_per_s": None, "process": None}
        self.lag, self.cpu, self.steal = LoopLagMonitor(), CpuMeter(), CpuSteal()
        self.gc = GcPauses()
        self._send_lock = asyncio.Lock()
        self.stuck: set[asyncio.Task] = set()
        self.jitter_ms: list[float] = []
        self._writer: asyncio.StreamWriter | None = None

    async def send(self, msg: dict) -> None:
        if self._writer is None or self._writer.is_closing():
            return
        async with self._send_lock:
            self._writer.write((json.dumps(msg) + "\n").encode())
            with contextlib.suppress(ConnectionError):
                await self._writer.drain()

    def health(self) -> dict:
        h = self.outcome.harness_health()
        cpu_mean, cpu_p90 = self.cpu.mean_pct(), self.cpu.p90_pct()
        h["loop_lag_ms_p99"] = round(self.lag.p99_ms(), 3) if self.lag.p99_ms() is not None else None
        h.update(node=self.node, pid=os.getpid(), cpu_pct_mean=round(cpu_mean, 1),
                 cpu_pct_p90=round(cpu_p90, 1) if cpu_p90 is not None else None,
                 cpu_steal_pct=self.steal.percent(), calls_done=self.outcome.calls_done,
                 calls_in_flight=len(self.calls), t0_unix=self.t0_unix, arrivals=dict(self.arrivals),
                 gc_pause_ms_max=max((s["max_ms"] for s in self.gc.summary().values()), default=0.0))
        jit = np.array(self.jitter_ms) if self.jitter_ms else None
        h["recv_jitter_ms_p50"] = round(float(np.percentile(jit, 50)), 3) if jit is not None else None
        h["recv_jitter_ms_p99"] = round(float(np.percentile(jit, 99)), 3) if jit is not None else None
        reasons = []
        if h["send_lateness_ms_p99"] > LATENESS_BUDGET_MS:
            reasons.append(f"send lateness p99 {h['send_lateness_ms_p99']:.1f} ms > {LATENESS_BUDGET_MS:g} ms")
        if (h["loop_lag_ms_p99"] or 0) > h["budget"]["loop_lag_ms_p99"]:
            reasons.append(f"event-loop lag p99 {h['loop_lag_ms_p99']:.1f} ms > {h['budget']['loop_lag_ms_p99']:g} ms")
        if cpu_p90 is not None and cpu_p90 > CPU_BUDGET_PCT:
            reasons.append(f"engine CPU p90 {cpu_p90:.0f} % > {CPU_BUDGET_PCT:g} %")
        h["overloaded"], h["overloaded_why"] = bool(reasons), reasons
        h["budget"]["cpu_pct_p90"] = CPU_BUDGET_PCT
        return h

    def _heard(self, tl) -> None:
        self.jitter_ms.extend(receive_jitter_ms(tl.audio_arrival_ns, tl.audio_len).tolist())
        del self.jitter_ms[:-500_000]  # the most recent half million chunks are plenty for a p99

    def window_start(self) -> None:
        """Mark a measurement window (the capacity bench reads steady state, not ramp-up)."""
        self._window_steal, self._window_preempt = CpuSteal(), preemptions()
        self._window = (time.perf_counter(), CpuMeter._cpu(),
                        {cid: len(call.timeline.send_ns) for cid, (call, _) in self.executor.live.items()},
                        len(self.gc.pauses_ns))

    def window_stats(self) -> dict:
        """Send lateness of the frames live calls sent since `window_start`, and this process's CPU."""
        t0, c0, marks, gc_mark = self._window
        late, when = [], []
        for cid, (call, _) in self.executor.live.items():
            tl = call.timeline
            first = marks.get(cid, 0)
            sent = np.frombuffer(tl.send_ns, dtype=np.int64)[first:]
            due = tl.t0_ns + (first + np.arange(len(sent), dtype=np.int64)) * FRAME_NS
            late.append((sent - due) / 1e6)
            when.append(due)
        dt = time.perf_counter() - t0
        pre = preemptions()
        preempted = round((pre - self._window_preempt) / dt, 1) if pre is not None and self._window_preempt is not None else None
        arr = np.concatenate(late) if late else np.zeros(1)
        # the worst lateness per 100 ms of schedule: one stall vs. a steady backlog
        bins = []
        if late and len(arr):
            due = np.concatenate(when)
            k = (due - due.min()) // 100_000_000
            worst = np.full(int(k.max()) + 1, 0.0)
            np.maximum.at(worst, k, arr)
            bins = np.round(worst, 1).tolist()
        return {"seconds": round(dt, 3), "calls_live": len(self.executor.live), "frames": int(sum(map(len, late))),
                "send_lateness_ms_p50": round(float(np.percentile(arr, 50)), 3),
                "send_lateness_ms_p99": round(float(np.percentile(arr, 99)), 3),
                "cpu_pct": round(100.0 * (CpuMeter._cpu() - c0) / max(1e-9, dt), 1),
                "loop_lag_ms_p99": self.lag.p99_ms(), "gc": self.gc.summary(gc_mark),
                "cpu_steal_pct": self._window_steal.percent(), "preempted_per_s": preempted,
                "lateness_ms_max_per_100ms": bins}

    def _start_call(self, call_id: str, index: int, intended_ns: int | None = None) -> None:
        task = asyncio.create_task(self._call(call_id, index, intended_ns))
        self.calls.add(task)
        task.add_done_callback(self.calls.discard)

    async def _call(self, call_id: str, index: int, intended_ns: int | None) -> None:
        errors_before = len(self.outcome.call_errors)
        rows = [r.to_json() for r in await self.executor.run_one(index, call_id, intended_ns, on_timeline=self._heard)]
        error = self.outcome.call_errors[-1] if len(self.outcome.call_errors) > errors_before else None
        await self.send({"op": "call_done", "id": call_id, "rows": rows, "error": error})

    async def _arrivals(self, msg: dict) -> None:
        offsets = arrival_offsets_s(float(msg["rate_per_s"]), msg.get("process", "poisson"),
                                    float(msg["duration_s"]), int(msg.get("seed", 0)))
        cap, prefix, first = int(msg.get("max_in_flight", 1000)), msg.get("prefix", self.node), int(msg.get("first_index", 0))
        self.arrivals.update(rate_per_s=float(msg["rate_per_s"]), process=msg.get("process", "poisson"))
        start = time.perf_counter_ns()
        for k, off in enumerate(offsets):
            intended = start + int(off * 1e9)
            await sleep_until(intended)
            if self.draining:
                return
            self.arrivals["offered"] += 1
            if len(self.calls) >= cap:  # the harness's own bound: say so, never silently slow the offered load
                self.arrivals["dropped"] += 1
                continue
            self.arrivals["started"] += 1
            self._start_call(f"{prefix}-{k:05d}", first + k, intended)
        await self.send({"op": "schedule_done", "offered": self.arrivals["offered"]})

    async def _drain(self, timeout_s: float) -> dict:
        self.draining = True
        for t in list(self.schedules):
            t.cancel()
        pending = list(self.calls)
        abandoned = 0
        if pending:
            _, still = await asyncio.wait(pending, timeout=timeout_s)
            if still:
                abandoned = len(still)
                kept = self.executor.abandon_live()
                for t in still:
                    t.cancel()
                await asyncio.gather(*still, return_exceptions=True)
                if kept:
                    await self.send({"op": "call_done", "id": None, "rows": [r.to_json() for r in kept],
                                     "error": "run interrupted"})
        return {"op": "drained", "health": self.health(), "abandoned": abandoned}

    async def handle(self, msg: dict) -> None:
        op = msg.get("op")
        if op == "call":
            if self.draining:
                await self.send({"op": "refused", "id": msg.get("id"), "why": "draining"})
            else:
                self._start_call(str(msg["id"]), int(msg["index"]))
        elif op == "arrivals":
            if self.draining:
                await self.send({"op": "refused", "id": None, "why": "draining"})
                return
            task = asyncio.create_task(self._arrivals(msg))
            self.schedules.add(task)  # cancelled as soon as draining starts
            task.add_done_callback(self.schedules.discard)
        elif op == "drain":
            await self.send(await self._drain(float(msg.get("timeout_s", 30.0))))
        elif op == "health":
            await self.send({"op": "health", **self.health()})
        elif op == "window_start":
            self.window_start()
            self.lag.lags_ns.clear()
            await self.send({"op": "window_started"})
        elif op == "window_stats":
            await self.send({"op": "window", **self.window_stats()})
        else:
            await self.send({"op": "error", "why": f"unknown op {op!r}"})

    async def serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        await self.send({"op": "ready", "node": self.node, "pid": os.getpid()})
        try:
            while line := await reader.readline():
                try:
                    msg = json.loads(line)
                except ValueError:
                    await self.send({"op": "error", "why": f"not JSON: {line[:80]!r}"})
                    continue
                await self.handle(msg)
        finally:
            # the Locust side is gone: hang up every call so the agent holds no stale calls
            tasks = [*self.schedules, *self.calls]
            for t in tasks:
                t.cancel()
            if tasks:
                _, self.stuck = await asyncio.wait(tasks, timeout=HANGUP_S)
            if self.stuck:
                print(f"engine {self.node}: {len(self.stuck)} calls did not hang up within {HANGUP_S:g} s; "
                      "exiting closes their sockets", file=sys.stderr)
            self._writer = None
            writer.close()


async def serve(config: EngineConfig, node: str, socket_path: str) -> None:
    engine = Engine(config, node)
    # the analyser's forkserver must not inherit the pipe the parent reads "ready" from: an
    # orphaned holder would keep it open and the parent's wait for this process would never end
    ready_fd = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    await engine.executor.analyzer.start()
    quiet_gc()
    done = asyncio.Event()

    async def on_connect(reader, writer):
        try:
            await engine.serve_connection(reader, writer)
        finally:
            done.set()

    def dump_tasks() -> None:  # kill -USR1 <engine pid>: what every task is waiting for, on stderr
        for t in asyncio.all_tasks():
            t.print_stack(limit=8, file=sys.stderr)

    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, dump_tasks)
    server = await asyncio.start_unix_server(on_connect, path=socket_path)
    lag_task, cpu_task = asyncio.create_task(engine.lag.run()), asyncio.create_task(engine.cpu.run())
    os.write(ready_fd, b"ready\n")
    os.close(ready_fd)
    try:
        with engine.gc:  # collection pauses, reported beside send lateness
            await done.wait()
    finally:
        lag_task.cancel()
        cpu_task.cancel()
        server.close()
        engine.executor.analyzer.close()
        with contextlib.suppress(OSError):
            os.unlink(socket_path)
    if engine.stuck:  # asyncio.run would wait for them forever; the process exit hangs them up
        sys.stderr.flush()
        os._exit(0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.load.engine", description=__doc__.splitlines()[0])
    p.add_argument("--socket", required=True, help="Unix socket path to listen on")
    p.add_argument("--node", default="local", help="name of the Locust process this engine serves")
    p.add_argument("--config", required=True, help="engine config JSON file")
    args = p.parse_args(argv)
    try:
        with open(args.config) as f:
            config = EngineConfig.from_json(f.read())
        asyncio.run(serve(config, args.node, args.socket))
    except EngineConfigError as e:
        print(f"error: {e}", flush=True)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
