"""A TTS provider from outside turnbench: one 440 Hz tone of `ms_per_char` per character."""

from collections.abc import Iterator

import numpy as np

from harness.agent.providers import TTS


class BeepTts(TTS):
    name = "beep"

    def __init__(self, ms_per_char: float = 20.0, level: float = 0.3):
        self.ms_per_char, self.level = float(ms_per_char), float(level)

    def synthesize(self, text: str) -> Iterator[np.ndarray]:
        n = int(16000 * max(0.2, len(text) * self.ms_per_char / 1000))
        tone = self.level * np.sin(2 * np.pi * 440 * np.arange(n) / 16000)
        pcm = (tone * 32767).astype(np.int16)
        for a in range(0, n, 3200):
            yield pcm[a : a + 3200]
