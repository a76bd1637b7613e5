"""Sample-accurate "audible" detection: when does a signal become, and stop being, audible.

One definition serves every use (fixture segmentation, the agent's audio at the caller, the
oracle's ground truth): a stretch is audible where the short-term RMS over `window_ms`
reaches a threshold `margin_db` above the signal's own noise floor. Onsets and offsets are
then refined to the first/last sample inside that window whose magnitude reaches the same
threshold, so the answer does not depend on where chunk or frame boundaries fall.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.audio.frames import SAMPLE_RATE, amplitude_to_db, db_to_amplitude


@dataclass(frozen=True)
class DetectorConfig:
    """Knobs of the audible detector; the defaults are what every metric uses."""

    window_ms: float = 5.0
    margin_db: float = 14.0
    """Threshold above the noise floor: 14 dB is 5σ for white noise, so noise alone never trips it."""
    min_threshold_dbfs: float = -50.0
    """Floor of the threshold itself, for digitally silent streams."""
    max_floor_dbfs: float = -40.0
    """Cap on the floor estimate, for streams with almost no pauses to estimate it from."""
    floor_percentile: float = 5.0
    floor_block_ms: float = 10.0
    sample_rate: int = SAMPLE_RATE


DEFAULT_DETECTOR = DetectorConfig()


@dataclass(frozen=True)
class Interval:
    """A closed range of sample indices [start, end] (end is the last audible sample)."""

    start: int
    end: int


def noise_floor_dbfs(samples: np.ndarray, valid: np.ndarray | None = None,
                     cfg: DetectorConfig = DEFAULT_DETECTOR) -> float:
    """Noise floor of a signal: a low percentile of its block RMS, over blocks that hold real audio."""
    block = max(1, int(cfg.sample_rate * cfg.floor_block_ms / 1000))
    n = len(samples) // block
    if n == 0:
        return -120.0
    x = np.asarray(samples[: n * block], dtype=np.float64).reshape(n, block)
    rms = np.sqrt((x * x).mean(axis=1))
    if valid is not None:
        ok = np.asarray(valid[: n * block]).reshape(n, block).all(axis=1)
        rms = rms[ok]
    if rms.size < 5:
        return -120.0
    return float(amplitude_to_db(np.percentile(rms, cfg.floor_percentile)))


def threshold_dbfs(floor_dbfs: float, cfg: DetectorConfig = DEFAULT_DETECTOR) -> float:
    """The audible threshold for a stream with the given noise floor."""
    return max(min(floor_dbfs, cfg.max_floor_dbfs) + cfg.margin_db, cfg.min_threshold_dbfs)


def audible_intervals(samples: np.ndarray, threshold_db: float,
                      cfg: DetectorConfig = DEFAULT_DETECTOR) -> list[Interval]:
    """Every maximal audible stretch of `samples` at `threshold_db`, sample-accurate."""
    x = np.asarray(samples, dtype=np.float64)
    if x.size == 0:
        return []
    w = max(1, int(round(cfg.sample_rate * cfg.window_ms / 1000)))
    thr = db_to_amplitude(threshold_db)
    energy = np.concatenate(([0.0], np.cumsum(x * x)))
    idx = np.arange(x.size)
    lo = np.maximum(idx - w + 1, 0)
    mean_sq = (energy[idx + 1] - energy[lo]) / w  # trailing window, zero-padded before the start
    active = mean_sq >= thr * thr
    if not active.any():
        return []
    edges = np.diff(active.astype(np.int8), prepend=0, append=0)
    rises = np.flatnonzero(edges == 1)
    falls = np.flatnonzero(edges == -1)  # first inactive index after each run
    loud = np.abs(x) >= thr
    out: list[Interval] = []
    for r, f in zip(rises, falls):
        a = max(r - w + 1, 0)
        hits = np.flatnonzero(loud[a : r + 1])
        start = a + int(hits[0]) if hits.size else int(r)
        b = max(f - w, 0)
        hits = np.flatnonzero(loud[b:f])
        end = b + int(hits[-1]) if hits.size else int(f - 1)
        start, end = int(start), int(max(start, end))
        if out and start <= out[-1].end:  # refinement can make neighbours touch
            out[-1] = Interval(out[-1].start, max(out[-1].end, end))
        else:
            out.append(Interval(start, end))
    return out


def merge_intervals(intervals: list[Interval], max_gap_samples: int) -> list[Interval]:
    """Join intervals separated by fewer than `max_gap_samples` silent samples."""
    merged: list[Interval] = []
    for iv in intervals:
        if merged and iv.start - merged[-1].end - 1 < max_gap_samples:
            merged[-1] = Interval(merged[-1].start, iv.end)
        else:
            merged.append(iv)
    return merged


def speech_segments(samples: np.ndarray, sample_rate: int = SAMPLE_RATE, min_gap_ms: float = 200.0,
                    min_speech_ms: float = 30.0, cfg: DetectorConfig = DEFAULT_DETECTOR) -> list[Interval]:
    """Speech segments of a clean recording: audible stretches, joined across short gaps.

    Used to measure fixtures; gaps shorter than `min_gap_ms` (stop closures, word gaps) do not
    split a segment, and blips shorter than `min_speech_ms` are dropped.
    """
    cfg = DetectorConfig(**{**cfg.__dict__, "sample_rate": sample_rate})
    thr = threshold_dbfs(noise_floor_dbfs(samples, cfg=cfg), cfg)
    ivs = merge_intervals(audible_intervals(samples, thr, cfg), int(sample_rate * min_gap_ms / 1000))
    min_len = int(sample_rate * min_speech_ms / 1000)
    return [iv for iv in ivs if iv.end - iv.start + 1 >= min_len]
