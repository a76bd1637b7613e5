"""Test double: synthetic run folders (run.json, turns.jsonl, summary.json) with known distributions.

The turns are drawn, not measured; the summary is computed from them by the real `summarize`, so
report and gate code read exactly what `turnbench run` writes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from harness.metrics.summary import summarize
from harness.metrics.turns import TURN_SCHEMA
from harness.results.folder import RUN_SCHEMA

KINDS = ("utterance", "utterance", "paused", "barge_in", "backchannel")


def synthetic_turns(n: int, *, median_ms: float = 500.0, sigma: float = 0.25, fi_rate: float = 0.05,
                    seed: int = 0, calls: int | None = None, stages: bool = True) -> list[dict]:
    """`n` turn rows: lognormal latency, false interruptions at `fi_rate`, barge-ins and backchannels."""
    rng = np.random.default_rng(seed)
    calls = calls or max(1, n // len(KINDS))
    rows = []
    for i in range(n):
        call, turn = divmod(i, len(KINDS))
        kind = KINDS[turn]
        lat = float(median_ms * np.exp(sigma * rng.standard_normal()))
        row = {"schema": TURN_SCHEMA, "call_id": f"c{call % calls:04d}" if calls < n else f"c{call:04d}",
               "turn": turn, "kind": kind, "fixture": f"fx_{kind}", "latency_ms": None, "first_byte_ms": None,
               "false_interruption": None, "false_interruption_at_ms": None, "barge_in_stop_ms": None,
               "barge_in_success": None, "backchannel_ok": None, "no_response": None, "transcript": None,
               "wer": None, "turn_detection_ms": None, "stages_ms": None, "error": None,
               "eos_s": 3.0 + 6.0 * turn, "response_onset_s": None, "speech_start_s": 1.0 + 6.0 * turn,
               "call_started_s": round(call * 30.0 / max(1, calls) * 10, 3), "calls_in_flight": 1 + call % 3}
        if kind == "backchannel":
            row["backchannel_ok"] = bool(rng.random() > 0.05)
        else:
            fi = bool(rng.random() < fi_rate)
            row.update(latency_ms=round(lat, 3), first_byte_ms=round(lat - 2, 3), false_interruption=fi,
                       false_interruption_at_ms=400.0 if fi else None, no_response=False,
                       response_onset_s=row["eos_s"] + lat / 1000, transcript="hello there", wer=0.1)
            if stages:
                td = 0.6 * lat
                row["turn_detection_ms"] = round(td, 3)
                row["stages_ms"] = {"turn_detection": round(td, 3), "stt_final": 30.0, "llm_ttft": round(0.2 * lat, 3),
                                    "tts_ttfb": round(0.1 * lat, 3), "transport": round(0.1 * lat - 30, 3)}
        if kind == "barge_in":
            stop = float(250 * np.exp(0.2 * rng.standard_normal()))
            row.update(barge_in_stop_ms=round(stop, 3), barge_in_success=stop < 500)
        rows.append(row)
    return rows


def write_run(path: Path, turns: list[dict], *, scenario_sha: str = "a" * 64, fixtures_digest: str = "f" * 16,
              thresholds: list[str] = (), target: str = "synthetic", harness: dict | None = None) -> Path:
    """A run folder as `turnbench run` leaves it."""
    from harness.thresholds import evaluate

    path.mkdir(parents=True, exist_ok=True)
    calls = len({t["call_id"] for t in turns})
    run = {"schema": RUN_SCHEMA, "scenario": {"name": "synthetic", "path": "scenarios/synthetic.yaml",
                                              "sha256": scenario_sha, "steps": 5},
           "fixtures": {"digest": fixtures_digest}, "target": target, "transport": "ws-pcm", "calls": calls,
           "concurrency": 3, "seed": 0, "status": "completed", "started_at": "2026-11-24T00:00:00+00:00"}
    health = harness or {"send_lateness_ms_p50": 0.1, "send_lateness_ms_p99": 0.5, "loop_lag_ms_p99": 1.0,
                         "overloaded": False}
    summary = summarize(turns, calls=calls, target=target, transport="ws-pcm", scenario="synthetic", harness=health)
    checks = evaluate(summary, list(thresholds))
    summary["thresholds"] = [{"expr": c.threshold.expr, "actual": c.actual, "pass": c.passed} for c in checks]
    (path / "run.json").write_text(json.dumps(run))
    (path / "summary.json").write_text(json.dumps(summary))
    (path / "turns.jsonl").write_text("".join(json.dumps(t) + "\n" for t in turns))
    return path
