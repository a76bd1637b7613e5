"""Many calls, side by side: concurrency, incremental results, harness health, clean Ctrl-C."""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from harness.audio.fixtures import FixtureLibrary
from harness.caller.call import Call, CallSettings, TurnPlan, plan_turns
from harness.caller.pacing import CpuSteal, LoopLagMonitor, quiet_gc
from harness.metrics.envelope import caller_peaks, peaks, timeline_row
from harness.metrics.turns import AnalysisSettings, TurnResult, analyze_call, analyze_call_heard
from harness.records.timeline import CallTimeline
from harness.scenario.model import Scenario
from harness.transports import TargetProtocolError, TargetUnreachable, make_transport
from harness.transports.impair import ImpairedTransport, ImpairmentProfile
from harness.transports.per_call import expand as expand_per_call

LATENESS_BUDGET_MS = 5.0
LOOP_LAG_BUDGET_MS = 10.0


@dataclass
class RunSpec:
    """Everything needed to run a scenario's calls against one target."""

    scenario: Scenario
    fixtures: FixtureLibrary
    target_url: str
    transport: str = "ws-pcm"
    calls: int = 1
    concurrency: int = 1
    call_settings: CallSettings = field(default_factory=CallSettings)
    analysis: AnalysisSettings = field(default_factory=AnalysisSettings)
    call_id_in_url: bool = False
    transport_options: dict = field(default_factory=dict)
    """Options for the transport's constructor (e.g. Twilio custom parameters, WebRTC signalling)."""
    impairment: ImpairmentProfile | None = None
    """Network path applied on the caller's side, both directions, seeded per call."""
    headers: dict = field(default_factory=dict, repr=False)
    """Sent with every call's connection (the agent's bearer token); never recorded."""
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    """`{run_id}` in transport options (the run folder's name where there is one)."""


@dataclass
class RunOutcome:
    """What the runner observed about itself and the calls."""

    calls_done: int = 0
    call_errors: list[str] = field(default_factory=list)
    lateness_ms: list[float] = field(default_factory=list)
    loop_lag_p99_ms: float | None = None
    cpu_steal_pct: float | None = None
    interrupted: bool = False

    def harness_health(self) -> dict:
        late = np.array(self.lateness_ms) if self.lateness_ms else np.zeros(1)
        p50, p99 = float(np.percentile(late, 50)), float(np.percentile(late, 99))
        lag = self.loop_lag_p99_ms
        return {"send_lateness_ms_p50": round(p50, 3), "send_lateness_ms_p99": round(p99, 3),
                "loop_lag_ms_p99": round(lag, 3) if lag is not None else None,
                "frames": len(self.lateness_ms), "cpu_steal_pct": self.cpu_steal_pct,
                # a run that placed no audio measured nothing the harness could have spoiled
                "overloaded": bool(self.lateness_ms) and bool(p99 > LATENESS_BUDGET_MS
                                                              or (lag or 0) > LOOP_LAG_BUDGET_MS),
                "budget": {"send_lateness_ms_p99": LATENESS_BUDGET_MS, "loop_lag_ms_p99": LOOP_LAG_BUDGET_MS}}


def expected_turns(plans: list[TurnPlan]) -> list[tuple[int, str, str]]:
    return [(p.index, p.kind, p.fixture.id) for p in plans]


class Analyzer:
    """Per-call analysis in a worker process: 50–150 ms of numpy per call must not stall the
    event loop that stamps other calls' frames (that would be measurement error)."""

    def __init__(self, settings: AnalysisSettings):
        self.settings = settings
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    async def start(self) -> None:
        """Start the worker before the first call, not in the middle of someone's turn."""
        if self._pool is None:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["harness.metrics.turns"])
            self._pool = concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx,
                                                                initializer=_leave_signals_to_the_parent)
            await asyncio.get_running_loop().run_in_executor(self._pool, abs, 0)

    async def analyze(self, tl: CallTimeline, plans: list[TurnPlan]) -> tuple[list[TurnResult], object, int]:
        """(turn results, heard agent audio as 10 ms peaks, heard-time origin)."""
        await self.start()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, analyze_call_heard, tl, expected_turns(plans), self.settings)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=False)
            self._pool = None


def _leave_signals_to_the_parent() -> None:
    """In the analysis worker: Ctrl-C reaches the whole process group; the parent decides what a
    stop means (and shuts this worker down), so the worker neither dies mid-analysis nor prints a
    KeyboardInterrupt traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def closed_turns(tl: CallTimeline, results: list[TurnResult]) -> list[TurnResult]:
    """On interruption: only turns whose response window had closed (the next turn had started)."""
    placed = sorted(t.index for t in tl.turns)
    closed = set(placed[:-1])
    return [r for r in results if r.turn in closed]


class CallExecutor:
    """Runs single calls of a spec and measures them: the part `run_calls` and the load engine share.

    Holds the live calls (so an interruption can still analyse what they heard), the analyser
    process and the fixtures' timeline peaks (computed once, before the first frame).
    """

    def __init__(self, spec: RunSpec, outcome: RunOutcome, run_t0_ns: int):
        self.spec, self.outcome, self.run_t0_ns = spec, outcome, run_t0_ns
        self.analyzer = Analyzer(spec.analysis)
        self.live: dict[str, tuple[Call, list[TurnPlan]]] = {}
        self.fixture_peaks = {fid: peaks(fx.samples) for fid, fx in spec.fixtures.fixtures.items()}

    async def run_one(self, index: int, call_id: str | None = None, intended_ns: int | None = None,
                      on_timeline: Callable[[CallTimeline], None] | None = None,
                      on_call_timeline: Callable[[dict], None] | None = None) -> list[TurnResult]:
        """One call from connect to analysis; a failed call still yields its turns, marked."""
        spec, outcome = self.spec, self.outcome
        now = time.perf_counter_ns()
        call_id = call_id or f"c{index:04d}"
        plans = plan_turns(spec.scenario, spec.fixtures, index, spec.call_settings.seed)
        url = spec.target_url
        if spec.call_id_in_url:
            url += ("&" if "?" in url else "?") + f"call_id={call_id}"
        options = expand_per_call(spec.transport_options, call_id, spec.run_id)
        if spec.headers:
            options = {**options, "headers": {**options.get("headers", {}), **spec.headers}}
        transport = make_transport(spec.transport, url, **options)
        if spec.impairment is not None:
            transport = ImpairedTransport(transport, spec.impairment, seed=f"{spec.call_settings.seed}:{call_id}")
        call = Call(transport, spec.scenario, plans, call_id, spec.call_settings)
        self.live[call_id] = (call, plans)
        started_s = round((now - self.run_t0_ns) / 1e9, 6)
        start_lag_ms = round((now - intended_ns) / 1e6, 3) if intended_ns is not None else None
        in_flight = len(self.live)
        try:
            tl = await call.run()
        except TargetUnreachable as e:
            call.timeline.error = str(e)
            tl = call.timeline
        except TargetProtocolError as e:  # e.g. an offer answered with an error: this call fails, the run goes on
            call.timeline.error = f"protocol error: {e}"
            tl = call.timeline
        except asyncio.CancelledError:
            raise  # interrupted: the call stays live, so `abandon_live` keeps its closed turns
        except BaseException:
            self.live.pop(call_id, None)
            raise
        if tl.error:
            outcome.call_errors.append(tl.error)
        elif tl.protocol_errors:  # the call went on; say what the target got wrong, once per call
            more = f" (and {len(tl.protocol_errors) - 1} more)" if len(tl.protocol_errors) > 1 else ""
            outcome.call_errors.append(f"protocol error: {tl.protocol_errors[0]}{more}")
        if on_timeline is not None:
            on_timeline(tl)
        results, agent, origin = await self.analyzer.analyze(tl, plans)  # still live: a stop here keeps it
        self.live.pop(call_id, None)
        outcome.lateness_ms.extend(x / 1e6 for x in tl.lateness_ns())
        for r in results:
            r.call_started_s, r.calls_in_flight, r.setup_ms = started_s, in_flight, tl.setup_ms
            r.start_lag_ms = start_lag_ms
        if on_call_timeline is not None:
            sent = caller_peaks(tl, self.fixture_peaks)
            on_call_timeline(timeline_row(tl, sent, agent, origin if len(tl.audio_len) else None, started_s))
        outcome.calls_done += 1
        return results

    def abandon_live(self) -> list[TurnResult]:
        """On interruption: the turns of calls still in flight whose response window had closed."""
        kept: list[TurnResult] = []
        for call, plans in list(self.live.values()):
            tl = call.timeline
            tl.ended_ns = tl.ended_ns or time.perf_counter_ns()
            self.outcome.lateness_ms.extend(x / 1e6 for x in tl.lateness_ns())
            kept += closed_turns(tl, analyze_call(tl, expected_turns(plans), self.spec.analysis))
            self.outcome.call_errors.append("run interrupted")
        self.live.clear()
        return kept


async def run_calls(spec: RunSpec, on_turns: Callable[[list[TurnResult]], None],
                    on_call_done: Callable[[RunOutcome], None] = lambda _: None,
                    on_timeline: Callable[[CallTimeline], None] | None = None,
                    on_call_timeline: Callable[[dict], None] | None = None) -> RunOutcome:
    """Run `spec.calls` calls, at most `spec.concurrency` at once; results go to `on_turns` per call,
    and each call's waveform summary (a timelines.jsonl row) to `on_call_timeline`."""
    outcome = RunOutcome()
    lag = LoopLagMonitor()
    executor = CallExecutor(spec, outcome, time.perf_counter_ns())
    indices = iter(range(spec.calls))  # drawn as calls start: a billion calls cost nothing up front

    async def worker() -> None:
        for index in indices:
            results = await executor.run_one(index, on_timeline=on_timeline, on_call_timeline=on_call_timeline)
            on_turns(results)
            on_call_done(outcome)

    await executor.analyzer.start()
    quiet_gc()
    steal = CpuSteal()
    lag_task = asyncio.create_task(lag.run())
    try:
        async with asyncio.TaskGroup() as tg:
            for _ in range(min(spec.concurrency, spec.calls)):
                tg.create_task(worker())
    except asyncio.CancelledError:
        outcome.interrupted = True
        on_turns(executor.abandon_live())
    finally:
        lag_task.cancel()
        executor.analyzer.close()
        outcome.loop_lag_p99_ms = lag.p99_ms()
        outcome.cpu_steal_pct = steal.percent()
    return outcome
