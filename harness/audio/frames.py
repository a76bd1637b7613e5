"""The wire format every transport converts to and from: 16 kHz mono PCM16, 20 ms frames."""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16_000
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000
FRAME_NS = FRAME_MS * 1_000_000
SAMPLE_NS = 1_000_000_000 / SAMPLE_RATE


def pcm16_to_float(pcm: bytes | np.ndarray) -> np.ndarray:
    """PCM16LE bytes (or int16 samples) → float32 in [-1, 1)."""
    samples = np.frombuffer(pcm, dtype="<i2") if isinstance(pcm, (bytes, bytearray, memoryview)) else pcm
    return samples.astype(np.float32) / 32768.0


def float_to_pcm16(samples: np.ndarray) -> np.ndarray:
    """float in [-1, 1] → int16 samples, clipped (never wrapped)."""
    x = np.asarray(samples)
    if x.dtype != np.float32:  # float32 × 2**15 and its rounding are exact in float32: same result, half the work
        x = x.astype(np.float64)
    return np.clip(np.round(x * x.dtype.type(32768.0)), -32768, 32767).astype("<i2")


def db_to_amplitude(dbfs: float) -> float:
    """dBFS (RMS of a full-scale sine is -3 dBFS here: we use plain 20·log10 of RMS) → linear."""
    return float(10.0 ** (dbfs / 20.0))


def amplitude_to_db(amplitude: float | np.ndarray, floor_db: float = -120.0) -> float | np.ndarray:
    """Linear amplitude → dBFS, with a floor so that digital silence is finite."""
    amp = np.maximum(np.asarray(amplitude, dtype=np.float64), db_to_amplitude(floor_db))
    out = 20.0 * np.log10(amp)
    return float(out) if np.ndim(out) == 0 else out
