"""eSpeak NG, Debian's formant synthesiser: a second local TTS, fast and deterministic.

A baseline beside Piper rather than a voice anyone ships: it needs no model (first audio in
milliseconds on a CPU), sounds robotic, and makes the same samples for the same text every time.
It runs the `espeak-ng` program (Debian package `espeak-ng`), one clause at a time, so the first
clause plays while the rest is made.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import wave
from collections.abc import Iterator

import numpy as np

from harness.agent.providers.base import TTS, ProviderUnavailable
from harness.agent.providers.tts_piper import trim_silence
from harness.audio.frames import SAMPLE_RATE, float_to_pcm16
from harness.audio.resample import resample

_CLAUSES = re.compile(r"(?<=[.!?;:,])\s+")


class EspeakTts(TTS):
    """`espeak-ng --stdout` per clause, resampled to 16 kHz, edges trimmed like Piper's."""

    name = "espeak"

    def __init__(self, voice: str = "en-us", words_per_minute: int = 170, edge_silence_ms: float = 100.0,
                 timeout_s: float = 10.0):
        self._exe = shutil.which("espeak-ng")
        if self._exe is None:
            raise ProviderUnavailable("tts 'espeak' needs the espeak-ng program: apt install espeak-ng "
                                      "(bash scripts/setup.sh run installs it)")
        self._args = [self._exe, "--stdout", "-v", str(voice), "-s", str(int(words_per_minute))]
        self._edge = int(edge_silence_ms * SAMPLE_RATE / 1000)
        self._timeout = timeout_s

    def warm(self) -> None:
        for _ in self.synthesize("Hello there."):
            pass

    def synthesize(self, text: str) -> Iterator[np.ndarray]:
        for clause in _CLAUSES.split(text.strip()):
            if clause:
                yield self._clause(clause)

    def _clause(self, text: str) -> np.ndarray:
        try:
            done = subprocess.run([*self._args, "--", text], capture_output=True, timeout=self._timeout, check=True)
        except subprocess.CalledProcessError as e:
            raise RuntimeError(f"espeak-ng failed ({e.returncode}): {e.stderr.decode(errors='replace')[:200]}") from None
        with wave.open(io.BytesIO(done.stdout)) as w:
            rate, raw = w.getframerate(), w.readframes(w.getnframes())
        x = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
        return trim_silence(float_to_pcm16(resample(x, rate, SAMPLE_RATE)), self._edge)
