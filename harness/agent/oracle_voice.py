"""The oracle's "voice": speech-like bursts with sample-exact edges, so ground truth is exact.

Words are harmonic complexes (a 140 Hz voice with six harmonics, all in cosine phase so the
first sample is a peak) separated by 60–150 ms gaps of digital silence, i.e. shorter than the
250 ms that ends a talk spurt. A reply always starts and ends inside a word.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from harness.audio.frames import SAMPLE_RATE, db_to_amplitude


@lru_cache(maxsize=8)
def word_bank(level_dbfs: float, f0_hz: float = 140.0, n: int = 32, seed: int = 7) -> tuple[np.ndarray, ...]:
    """Precomputed words (150–350 ms each), so a reply costs a concatenation, not a synthesis."""
    rng = np.random.default_rng(seed)
    words = []
    for _ in range(n):
        t = np.arange(int(rng.uniform(0.15, 0.35) * SAMPLE_RATE)) / SAMPLE_RATE
        f0 = f0_hz * rng.uniform(0.9, 1.15)
        w = sum(np.cos(2 * np.pi * k * f0 * t) / k for k in range(1, 7))
        w *= db_to_amplitude(level_dbfs) / np.sqrt(np.mean(w * w))
        words.append(w.astype(np.float32))
    return tuple(words)


def synth_reply(duration_ms: float, rng: np.random.Generator, level_dbfs: float = -20.0) -> np.ndarray:
    """A float32 reply of about `duration_ms` whose first and last samples are audible."""
    bank = word_bank(float(level_dbfs))
    total = max(1, int(duration_ms * SAMPLE_RATE / 1000))
    parts: list[np.ndarray] = []
    pos = 0
    while True:
        word = bank[int(rng.integers(len(bank)))]
        if pos + len(word) >= total or not parts and len(word) >= total:
            parts.append(word[: max(1, total - pos)] if parts else word[:total])
            break
        parts.append(word)
        pos += len(word)
        gap = int(rng.uniform(0.06, 0.15) * SAMPLE_RATE)
        if total - (pos + gap) < int(0.08 * SAMPLE_RATE):  # never end on a gap or a sliver of a word
            break
        parts.append(np.zeros(gap, np.float32))
        pos += gap
    return np.concatenate(parts)


def white_noise(n: int, level_dbfs: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian white noise with the given RMS level."""
    return (rng.standard_normal(n) * db_to_amplitude(level_dbfs)).astype(np.float32)
