"""Silero VAD (the ONNX model inside the `silero-vad` wheel) on onnxruntime, without torch."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from harness.agent.providers.base import VAD, model_file

CONTEXT = 64  # samples of the previous window the v5+ model expects in front of each window


class SileroVad(VAD):
    """Streaming speech probability per 32 ms window (512 samples at 16 kHz)."""

    name = "silero"
    window_samples = 512

    def __init__(self, threads: int = 1):
        opts = ort.SessionOptions()
        opts.inter_op_num_threads = threads
        opts.intra_op_num_threads = threads
        self._session = ort.InferenceSession(str(model_file("silero_vad", "data/silero_vad.onnx")),
                                             sess_options=opts, providers=["CPUExecutionProvider"])
        self._sr = np.array(16000, dtype=np.int64)
        self.reset()

    def warm(self) -> None:
        self.speech_prob(np.zeros(self.window_samples, dtype=np.float32))
        self.reset()

    def reset(self) -> None:
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)

    def speech_prob(self, window: np.ndarray) -> float:
        window = np.asarray(window, dtype=np.float32)
        if window.shape != (self.window_samples,):
            raise ValueError(f"silero VAD takes windows of {self.window_samples} samples, got {window.shape}")
        x = np.concatenate([self._context, window])[None, :]
        out, self._state = self._session.run(None, {"input": x, "state": self._state, "sr": self._sr})
        self._context = window[-CONTEXT:]
        return float(out[0][0])
