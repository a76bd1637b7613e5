"""Sample-rate conversion with a polyphase filter (exact rational ratios, deterministic)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy.signal import resample_poly


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample float samples between integer rates; identity when the rates match."""
    if from_rate == to_rate:
        return np.asarray(samples, dtype=np.float32)
    ratio = Fraction(to_rate, from_rate)
    out = resample_poly(np.asarray(samples, dtype=np.float64), ratio.numerator, ratio.denominator)
    return out.astype(np.float32)


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average channels of a (frames, channels) array; pass 1-D through."""
    samples = np.asarray(samples)
    return samples if samples.ndim == 1 else samples.mean(axis=1)
