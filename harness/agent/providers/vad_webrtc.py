"""The WebRTC VAD (Google's GMM voice detector from libwebrtc, via `webrtcvad-wheels`): no model
file, no neural network, microseconds per frame. A classic baseline beside Silero: it decides
per 20 ms frame (no 32 ms windows to fill) and says speech or not, never how likely."""

from __future__ import annotations

import numpy as np

from harness.agent.providers.base import VAD, ProviderUnavailable


class WebRtcVad(VAD):
    """Speech or not per 20 ms frame (320 samples at 16 kHz), as probability 1.0 or 0.0."""

    name = "webrtc"
    window_samples = 320

    def __init__(self, mode: int = 3):
        try:
            import webrtcvad
        except ImportError as e:
            raise ProviderUnavailable("vad 'webrtc' needs webrtcvad-wheels: pip install -e '.[agent]'") from e
        if mode not in (0, 1, 2, 3):
            raise ValueError(f"mode {mode!r}: the aggressiveness is 0 (least) to 3 (most likely to call it non-speech)")
        self._make = lambda: webrtcvad.Vad(mode)
        self.mode = mode
        self.reset()

    def warm(self) -> None:
        self.speech_prob(np.zeros(self.window_samples, dtype=np.float32))
        self.reset()

    def reset(self) -> None:
        self._vad = self._make()  # its noise and speech models adapt: a new call starts fresh

    def speech_prob(self, window: np.ndarray) -> float:
        window = np.asarray(window, dtype=np.float32)
        if window.shape != (self.window_samples,):
            raise ValueError(f"webrtc VAD takes windows of {self.window_samples} samples, got {window.shape}")
        pcm = np.clip(np.round(window * 32768.0), -32768, 32767).astype("<i2").tobytes()
        return 1.0 if self._vad.is_speech(pcm, 16000) else 0.0
