"""Calibration with no hints: turnbench scored against the listening oracle, as any tool can be.

The oracle finds the caller's speech by its own fixed rule (`harness.agent.oracle_listen`) and
logs each turn's end of speech as a stream sample; turnbench calls it exactly as it calls any
agent (no `turnbench.hint`), and each measured turn is paired with the oracle turn that ended
at the same point of the stream. The same pairing is what `benchmarks/score_against_oracle.py`
does from the two files alone, for a tool that is not turnbench.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from harness.audio.fixtures import FixtureLibrary
from harness.calibration.cases import CASES, Case
from harness.calibration.run import _CaseRun
from harness.caller.call import CallSettings
from harness.metrics.turns import AnalysisSettings
from harness.scenario.model import Scenario

LISTEN_SCHEMA = "turnbench.calibration_listening/1"
LISTEN_CASES = ("paced", "noise_floor", "leading_silence", "burst_all", "quiet_nothing_between")
"""The behaviours any tool can be scored on without hints (clean, a noise floor, leading
silence, bursts, a quiet voice with nothing between replies)."""
HANGOVER_MS = 500.0
LISTEN_DELAY = "uniform:550:900"
"""Longer than the hangover, so the oracle's reply comes when it was programmed to."""
PAIR_TOLERANCE_SAMPLES = 480
"""30 ms: two ends of speech this close are the same turn's."""


def listening_scenario() -> Scenario:
    """Plain turns only: each one a turn by any rule, so measured and oracle turns pair one to one."""
    fixtures = ("utt_01_joe", "utt_07_slt", "utt_04_awb", "utt_02_slt", "utt_10_espeak", "utt_11_joe")
    steps: list[dict] = []
    for fx in fixtures:
        steps += [{"say": fx}, {"wait": "reply"}]
    return Scenario.model_validate({"version": 1, "name": "calibration-listening", "steps": steps})


def listening_cases() -> tuple[Case, ...]:
    return tuple(Case(c.name, c.oracle.model_copy(update={
        "listen": True, "listen_hangover_ms": HANGOVER_MS, "delay_ms": LISTEN_DELAY}), c.expect)
        for c in CASES if c.name in LISTEN_CASES)


async def calibrate_listening(fixtures: FixtureLibrary, calls_per_case: int = 2, transport: str = "ws-pcm",
                              seed: int = 0, progress: Callable[[int, int], None] = lambda done, total: None,
                              bound_median_ms: float = 1.0) -> dict:
    """turnbench's latency against the listening oracle's log, per behaviour: |error| median and
    max and the turns paired (the loopback's own delay included: no stamps are shared)."""
    cases = listening_cases()
    scenario = listening_scenario()
    settings = CallSettings(response_timeout_s=scenario.defaults.response_timeout_s,
                            reply_silence_ms=scenario.defaults.reply_silence_ms, hints=False, seed=seed)
    run = _CaseRun(scenario, fixtures, transport, calls_per_case, settings,
                   AnalysisSettings(settings.response_timeout_s, scenario.defaults.barge_in_threshold_ms), None,
                   progress, len(cases) * calls_per_case)
    servers = await run.measure(cases, seed, scenario.defaults.barge_in_threshold_ms, None)
    by_case, everything, unpaired = {}, [], 0
    for case, srv in zip(cases, servers):
        ends: dict[str, dict[int, float]] = {}
        for t in srv.truth:
            if t.segments and t.latency_ms is not None:
                ends.setdefault(t.call_id, {})[int(t.segments[-1][1])] = t.latency_ms
        errors = []
        for r in run.results[case.name]:
            tl = run.timelines.get((case.name, r.call_id))
            turn = next((t for t in tl.turns if t.index == r.turn), None) if tl is not None else None
            if r.latency_ms is None or turn is None:
                continue
            truth = ends.get(r.call_id, {})
            near = min(truth, key=lambda s: abs(s - turn.eos_sample), default=None)
            if near is None or abs(near - turn.eos_sample) > PAIR_TOLERANCE_SAMPLES:
                unpaired += 1
                continue
            errors.append(r.latency_ms - truth[near])
        everything += errors
        by_case[case.name] = _stats(errors)
    overall = _stats(everything)
    ok = (overall["n"] > 0 and unpaired == 0 and overall["median_abs_error_ms"] is not None
          and overall["median_abs_error_ms"] <= bound_median_ms)
    return {"schema": LISTEN_SCHEMA, "transport": transport, "hangover_ms": HANGOVER_MS,
            "latency_error_ms": overall, "by_case": by_case, "turns_unpaired": unpaired,
            "bounds": [{"check": f"latency |error| median <= {bound_median_ms}",
                        "value": overall["median_abs_error_ms"], "pass": ok}],
            "pass": bool(ok)}


def _stats(errors: list[float]) -> dict:
    e = np.abs(np.array(errors))
    if not e.size:
        return {"median_abs_error_ms": None, "max_abs_error_ms": None, "signed_median_ms": None, "n": 0}
    return {"median_abs_error_ms": round(float(np.median(e)), 3), "max_abs_error_ms": round(float(e.max()), 3),
            "signed_median_ms": round(float(np.median(errors)), 3), "n": int(e.size)}
