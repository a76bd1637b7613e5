"""Acoustic end-of-phrase cues from the last stretch of speech: pitch and energy slopes.

A finished statement usually ends with falling pitch and falling energy; a speaker who holds the
floor keeps them level (or raises the pitch). Vectorised numpy, a few ms for half a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.audio.frames import SAMPLE_RATE

WIN = 640  # 40 ms analysis windows
HOP = 320  # 20 ms hop
F0_MIN, F0_MAX = 70.0, 400.0


@dataclass(frozen=True)
class PhraseEnd:
    """How the last stretch of speech ends: slopes per second, NaN where not measurable."""

    pitch_slope_st_per_s: float
    """Slope of the pitch in semitones per second over the voiced windows (negative = falling)."""
    energy_drop_db: float
    """Level of the last 100 ms below the level of the whole stretch (positive = falling)."""
    voiced_windows: int


def _frames(x: np.ndarray) -> np.ndarray:
    n = 1 + max(0, (len(x) - WIN) // HOP)
    idx = np.arange(WIN)[None, :] + HOP * np.arange(n)[:, None]
    return x[idx]


def pitch_track(x: np.ndarray, sr: int = SAMPLE_RATE) -> tuple[np.ndarray, np.ndarray]:
    """Per 40 ms window (20 ms hop): f0 in Hz (NaN where unvoiced) and the window's RMS."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) < WIN:
        return np.full(0, np.nan), np.zeros(0)
    fr = _frames(x)
    fr = fr - fr.mean(axis=1, keepdims=True)
    rms = np.sqrt(np.mean(fr**2, axis=1))
    spec = np.fft.rfft(fr * np.hanning(WIN), n=2 * WIN, axis=1)
    ac = np.fft.irfft(np.abs(spec) ** 2, axis=1)[:, :WIN]
    ac = ac / np.maximum(ac[:, :1], 1e-12)
    lo, hi = int(sr / F0_MAX), int(sr / F0_MIN)
    lag = lo + np.argmax(ac[:, lo:hi], axis=1)
    peak = ac[np.arange(len(ac)), lag]
    level = 20 * np.log10(np.maximum(rms, 1e-9))
    voiced = (peak > 0.45) & (level > level.max() - 30)
    f0 = np.where(voiced, sr / lag, np.nan)
    return f0, rms


def phrase_end(x: np.ndarray, sr: int = SAMPLE_RATE) -> PhraseEnd:
    """Pitch and energy slopes over `x`, the last ~0.5 s of speech before a silence."""
    f0, rms = pitch_track(x, sr)
    ok = ~np.isnan(f0)
    slope = float("nan")
    if ok.sum() >= 4:
        t = np.arange(len(f0))[ok] * HOP / sr
        st = 12 * np.log2(f0[ok] / np.median(f0[ok]))
        st = (st + 6) % 12 - 6  # fold octave errors of the autocorrelation back onto the contour
        i, j = np.triu_indices(len(t), k=1)
        slope = float(np.median((st[j] - st[i]) / (t[j] - t[i])))  # Theil-Sen: robust to stray windows
    drop = float("nan")
    if len(rms) >= 8:
        db = 20 * np.log10(np.maximum(rms, 1e-9))
        loud = db > db.max() - 40
        if loud.sum() >= 4:
            drop = float(np.mean(db[loud]) - np.mean(db[loud][-5:]))
    return PhraseEnd(slope, drop, int(ok.sum()))
