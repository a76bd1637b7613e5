"""Test doubles of streaming network providers: async only (`blocking = False`), so a test
fails if the pipeline ever calls their synchronous side in its ASR or TTS thread."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np

from harness.agent.providers.base import STT, TTS


class StreamingSttDouble(STT):
    """Partials grow word by word with the audio; the final arrives after `final_ms`."""

    name = "streaming-stt-double"
    blocking = False

    def __init__(self, transcript: str, final_ms: float = 30.0):
        self.transcript, self.final_ms = transcript, final_ms
        self.samples = 0
        self.calls: list[str] = []

    async def astart(self) -> None:
        self.calls.append("start")
        self.samples = 0

    async def afeed(self, pcm16: np.ndarray) -> str | None:
        self.samples += len(pcm16)
        words = self.transcript.split()
        n = min(len(words), self.samples // 8000)  # a word per half second of audio
        return " ".join(words[:n]) or None

    async def afinish(self) -> str:
        self.calls.append("finish")
        await asyncio.sleep(self.final_ms / 1000)
        return self.transcript


class StreamingTtsDouble(TTS):
    """A tone of `ms_per_char` per character, in 100 ms chunks, `chunk_ms` apart."""

    name = "streaming-tts-double"

    def __init__(self, ms_per_char: float = 40.0, chunk_ms: float = 5.0):
        self.ms_per_char, self.chunk_ms = ms_per_char, chunk_ms
        self.texts: list[str] = []

    async def stream(self, text: str, executor=None) -> AsyncIterator[np.ndarray]:
        self.texts.append(text)
        n = int(16 * max(200.0, len(text) * self.ms_per_char))
        pcm = (0.3 * np.sin(2 * np.pi * 300 * np.arange(n) / 16000) * 32767).astype(np.int16)
        for a in range(0, n, 1600):
            await asyncio.sleep(self.chunk_ms / 1000)
            yield pcm[a : a + 1600]
