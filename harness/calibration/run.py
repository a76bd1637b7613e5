"""Run every calibration case side by side against in-process oracles and compare."""

from __future__ import annotations

import asyncio
from typing import Callable

from harness.audio.fixtures import FixtureLibrary
from harness.calibration.cases import CASES, Case, calibration_scenario
from harness.calibration.compare import DEFAULT_BOUNDS, WEBRTC_BOUNDS, Comparison
from harness.agent.server import OracleServer
from harness.caller.call import CallSettings
from harness.caller.runner import RunOutcome, RunSpec, run_calls
import numpy as np

from harness.audio.frames import FRAME_SAMPLES
from harness.caller.timeline import CallTimeline
from harness.metrics.playout import play_out
from harness.metrics.turns import AnalysisSettings, TurnResult


async def calibrate(fixtures: FixtureLibrary, cases: tuple[Case, ...] = CASES, calls_per_case: int = 2,
                    transport: str = "ws-pcm", seed: int = 0, bounds: dict | None = None,
                    progress: Callable[[int, int], None] = lambda done, total: None,
                    parallel_cases: int | None = None) -> dict:
    """Measure each case's calls with the normal caller and score them against the oracle's log."""
    if bounds is None:
        bounds = WEBRTC_BOUNDS if transport == "webrtc" else DEFAULT_BOUNDS
    scenario = calibration_scenario()
    threshold = scenario.defaults.barge_in_threshold_ms
    settings = CallSettings(response_timeout_s=scenario.defaults.response_timeout_s,
                            reply_silence_ms=scenario.defaults.reply_silence_ms, hints=True, seed=seed)
    analysis = AnalysisSettings(settings.response_timeout_s, threshold)
    results: dict[str, list[TurnResult]] = {c.name: [] for c in cases}
    timelines: dict[tuple[str, str], CallTimeline] = {}
    outcomes: list[RunOutcome] = []
    total = len(cases) * calls_per_case
    done = [0]

    async def one(case: Case, url: str) -> None:
        spec = RunSpec(scenario, fixtures, url, transport, calls_per_case, calls_per_case, settings,
                       analysis, call_id_in_url=True)

        def tick(_o: RunOutcome) -> None:
            done[0] += 1
            progress(done[0], total)

        outcomes.append(await run_calls(spec, results[case.name].extend, tick,
                                        lambda tl: timelines.__setitem__((case.name, tl.call_id), tl)))

    # The oracles share the caller's event loop: on a VM, waking a second process costs more
    # (and varies more) than the loopback itself. Arrivals are stamped at the socket read on
    # both sides, so the shared loop's queueing does not enter the numbers.
    servers = [OracleServer(c.oracle.model_copy(update={"seed": seed}), barge_in_threshold_ms=threshold)
               for c in cases]
    try:
        for s in servers:
            await s.start()
        # WebRTC peers cost far more CPU (SRTP, Opus, both ends in this process): fewer at once,
        # or the harness's own lateness would be what gets measured
        gate = asyncio.Semaphore(parallel_cases or (2 if transport == "webrtc" else len(cases)))

        async def gated(case: Case, url: str) -> None:
            async with gate:
                await one(case, url)

        async with asyncio.TaskGroup() as tg:
            for case, srv in zip(cases, servers):
                tg.create_task(gated(case, srv.url_for(transport)))
        await asyncio.sleep(0.3)  # let the servers see the hang-ups and finalise their truth
    finally:
        for s in servers:
            await s.stop()
    comp = Comparison(threshold_ms=threshold)
    for case, srv in zip(cases, servers):
        truth = {(t.call_id, t.turn): t for t in srv.truth}
        for r in results[case.name]:
            t = truth.get((r.call_id, r.turn))
            tl = timelines.get((case.name, r.call_id))
            stamps = srv.message_stamps.get(r.call_id)
            # WebRTC re-frames audio: its messages do not pair up end to end (see WEBRTC_BOUNDS)
            delays = _transport_delays(tl, stamps, r.turn, t) if transport != "webrtc" else {}
            comp.add(case.name, r, t, delays)
    late = [x for o in outcomes for x in o.lateness_ms]
    health = RunOutcome(lateness_ms=late, loop_lag_p99_ms=max((o.loop_lag_p99_ms or 0) for o in outcomes),
                        cpu_steal_pct=max((o.cpu_steal_pct or 0) for o in outcomes)).harness_health()
    return comp.report(transport, None, bounds=bounds, cases=[{"name": c.name, "expect": c.expect,
                                                 "oracle": c.oracle.model_dump(exclude_defaults=True)}
                                                for c in cases], harness=health)


def _transport_delays(tl: CallTimeline | None, stamps: tuple[list[int], list[int], list[int], list[int]] | None,
                      index: int, truth) -> dict[str, float | None]:
    """What the loopback added to a turn's numbers, from both ends' stamps of the same messages:
    the EOS (or barge-in start) frame on the way up, plus how much later the caller heard the
    reply's onset chunk (or the stop's last chunk) start than the oracle's playout model did,
    which includes queueing behind earlier chunks that the loopback delayed. For first byte,
    the onset chunk's own arrival delay instead. Keys are the metrics they correct."""
    if tl is None or stamps is None or truth is None:
        return {}
    arrivals, oracle_sends, oracle_heard, clear_sends = stamps
    turn = next((t for t in tl.turns if t.index == index), None)
    if turn is None:
        return {}
    heard = play_out(tl.audio, tl.t0_ns, tl.clears)
    first = np.full(len(tl.audio_len), -1, dtype=np.int64)
    idx = np.flatnonzero(np.diff(heard.chunk, prepend=-1) != 0)
    idx = idx[heard.chunk[idx] >= 0]
    first[heard.chunk[idx]] = idx

    def up(sample: int) -> int | None:
        n = sample // FRAME_SAMPLES
        return arrivals[n] - tl.send_ns[n] if n < len(arrivals) and n < len(tl.send_ns) else None

    def down(seq: int | None) -> int | None:
        if seq is None or seq >= len(oracle_heard) or seq >= len(first) or first[seq] < 0:
            return None
        return heard.time_ns(int(first[seq])) - oracle_heard[seq]

    def arrival(seq: int | None) -> int | None:
        if seq is None or seq >= len(oracle_sends) or seq >= len(tl.audio_arrival_ns):
            return None
        return tl.audio_arrival_ns[seq] - oracle_sends[seq]

    def cleared(k: int | None) -> int | None:
        """A stop made by a `clear`: how much later the caller got it than the oracle sent it."""
        if k is None or k >= len(clear_sends) or k >= len(tl.clears):
            return None
        return tl.clears[k].arrival_ns - clear_sends[k]

    def total(a: int | None, b: int | None) -> float | None:
        return None if a is None or b is None else round((a + b) / 1e6, 3)

    return {"latency_ms": total(up(turn.eos_sample), down(truth.response_chunk_seq)),
            "first_byte_ms": total(up(turn.eos_sample), arrival(truth.response_chunk_seq)),
            "barge_in_stop_ms": total(up(turn.first_speech_sample),
                                      cleared(truth.stop_clear_index) if truth.stop_clear_index is not None
                                      else down(truth.stop_chunk_seq))}
