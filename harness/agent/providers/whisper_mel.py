"""Whisper's log-mel spectrogram in numpy: the input of Whisper-encoder models such as Smart Turn.

The standard recipe (Radford et al., "Robust Speech Recognition via Large-Scale Weak
Supervision"): 16 kHz audio, 25 ms Hann windows every 10 ms (n_fft 400, hop 160), power
spectrum, 80 Slaney-scale mel filters with area normalisation, log10, clamped to 8 decades below
the maximum, then (x + 4) / 4. No torch, no transformers.
"""

from __future__ import annotations

import functools

import numpy as np

SAMPLE_RATE, N_FFT, HOP, N_MELS = 16000, 400, 160, 80


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    return np.where(f < 1000.0, 3.0 * f / 200.0, 15.0 + np.log(np.maximum(f, 1e-9) / 1000.0) * 27.0 / np.log(6.4))


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    return np.where(m < 15.0, 200.0 * m / 3.0, 1000.0 * np.exp((m - 15.0) * np.log(6.4) / 27.0))


@functools.cache
def mel_filters() -> np.ndarray:
    """(N_FFT // 2 + 1, N_MELS) triangular filters, each normalised to unit area."""
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(SAMPLE_RATE / 2), N_MELS + 2))
    bins = np.linspace(0, SAMPLE_RATE // 2, N_FFT // 2 + 1)
    rising = (bins[:, None] - edges[None, :-2]) / np.diff(edges)[None, :-1]
    falling = (edges[None, 2:] - bins[:, None]) / np.diff(edges)[None, 1:]
    tri = np.maximum(0.0, np.minimum(rising, falling))
    return tri * (2.0 / (edges[2:] - edges[:-2]))[None, :]


@functools.cache
def _window() -> np.ndarray:
    return np.hanning(N_FFT + 1)[:-1]  # periodic Hann


def log_mel(audio: np.ndarray, seconds: float, normalize: bool = True) -> np.ndarray:
    """(80, 100 × seconds) float32 features of `audio` (float, 16 kHz), zero-padded at the end or
    cut to `seconds`. `normalize`: zero mean, unit variance over the padded waveform first."""
    n = int(SAMPLE_RATE * seconds)
    x = np.asarray(audio, dtype=np.float32)[:n]
    x = np.pad(x, (0, n - len(x)))
    if normalize:
        x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    padded = np.pad(x.astype(np.float64), (N_FFT // 2, N_FFT // 2), mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    power = np.abs(np.fft.rfft(frames * _window(), axis=-1)) ** 2  # (frames, bins)
    mel = np.log10(np.maximum(power @ mel_filters(), 1e-10)).T[:, :-1]
    mel = np.maximum(mel, mel.max() - 8.0)
    return ((mel + 4.0) / 4.0).astype(np.float32)
