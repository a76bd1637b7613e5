"""Compact per-call waveforms (`timelines.jsonl`): what the caller sent and what the listener heard.

A report draws the slowest calls and every false interruption on one time axis; storing the raw
audio of every call would cost ~2 MB a minute, so a call keeps one peak per 10 ms instead
(0–255 of full scale, base64): 17.6 kB for the two ~35 s calls of an oracle conversation run.
"""

from __future__ import annotations

import base64

import numpy as np

from harness.audio.frames import SAMPLE_RATE
from harness.records.timeline import CallTimeline

TIMELINE_SCHEMA = "turnbench.timeline/1"
STEP_MS = 10
STEP_SAMPLES = SAMPLE_RATE * STEP_MS // 1000


def peaks(samples: np.ndarray) -> np.ndarray:
    """Peak |amplitude| per 10 ms as uint8 (255 = full scale); accepts int16 or float in [-1, 1]."""
    x = np.abs(np.asarray(samples, dtype=np.float32))
    if samples.dtype == np.int16:
        x /= 32768.0
    n = -(-x.size // STEP_SAMPLES)
    padded = np.zeros(n * STEP_SAMPLES, dtype=np.float32)
    padded[: x.size] = x
    return np.minimum(padded.reshape(n, STEP_SAMPLES).max(axis=1) * 255.0 + 0.5, 255).astype(np.uint8)


def encode(p: np.ndarray) -> str:
    return base64.b64encode(np.asarray(p, dtype=np.uint8).tobytes()).decode("ascii")


def decode(text: str) -> np.ndarray:
    """Peaks back as floats in [0, 1]."""
    return np.frombuffer(base64.b64decode(text), dtype=np.uint8).astype(np.float32) / 255.0


def caller_peaks(tl: CallTimeline, fixture_peaks: dict[str, np.ndarray]) -> np.ndarray:
    """The caller's send stream as peaks: each turn's fixture at its place (stream time = sample/16 kHz).

    `fixture_peaks` maps fixture id → `peaks(samples)`, computed once per run.
    """
    sent = len(tl.send_ns) * (SAMPLE_RATE // 50) // STEP_SAMPLES
    out = np.zeros(sent, dtype=np.uint8)
    for turn in tl.turns:
        p = fixture_peaks[turn.fixture]
        at = turn.clip_start // STEP_SAMPLES
        n = max(0, min(p.size, out.size - at))
        out[at : at + n] = np.maximum(out[at : at + n], p[:n])
    return out


def timeline_row(tl: CallTimeline, caller: np.ndarray, agent: np.ndarray | None, agent_origin_ns: int | None,
                 started_s: float | None = None) -> dict:
    """One line of timelines.jsonl. Times in seconds from the call's first frame (as `eos_s` in turns)."""
    return {"schema": TIMELINE_SCHEMA, "call_id": tl.call_id, "step_ms": STEP_MS, "started_s": started_s,
            "caller_peaks": encode(caller),
            "agent_origin_s": round((agent_origin_ns - tl.t0_ns) / 1e9, 6) if agent_origin_ns is not None else None,
            "agent_peaks": encode(agent) if agent is not None else "",
            "clears_s": [round((c.arrival_ns - tl.t0_ns) / 1e9, 6) for c in tl.clears],
            "error": tl.error}
