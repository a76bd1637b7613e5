"""Sample format conversions: float ↔ PCM16 must round and clip the same way whatever the
input's float type (the oracle converts float32 replies; fixtures and codecs pass float64)."""

import numpy as np

from harness.audio.frames import float_to_pcm16, pcm16_to_float


def reference(x) -> np.ndarray:
    return np.clip(np.round(np.asarray(x, dtype=np.float64) * 32768.0), -32768, 32767).astype("<i2")


def test_float32_and_float64_convert_identically_with_ties_and_clipping():
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(200_000) * 0.8).astype(np.float32)
    edges = np.array([1.0, -1.0, 1.7, -1.7, 0.5, 1.5, -0.5, 2.5, 32767.5, -32768.5, 32766.5], np.float64)
    edges[4:] /= 32768.0  # exact ties at every rounding boundary, and just past full scale
    x = np.concatenate([edges.astype(np.float32), x])
    got32 = float_to_pcm16(x)
    assert got32.dtype == np.dtype("<i2")
    assert np.array_equal(got32, reference(x))
    assert np.array_equal(float_to_pcm16(x.astype(np.float64)), got32)
    assert got32[:4].tolist() == [32767, -32768, 32767, -32768]  # clipped, never wrapped
    assert got32[4:8].tolist() == [0, 2, 0, 2]  # round half to even


def test_a_round_trip_through_pcm16_is_exact():
    pcm = np.arange(-32768, 32768, dtype="<i2")
    assert np.array_equal(float_to_pcm16(pcm16_to_float(pcm.tobytes())), pcm)
    assert np.array_equal(float_to_pcm16([0.25, -0.25]), np.array([8192, -8192], "<i2"))  # a list, as float64
