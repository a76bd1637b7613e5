"""Simulated providers (`sim-…`): latency drawn from published provider figures, no model.

For fast tests and what-if budgets only; every report labels them as simulated, and they never
stand in for the real defaults. Latencies use the oracle's distributions (`lognormal:MEDIAN:P99`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import numpy as np

from harness.agent.oracle_config import Delay
from harness.agent.oracle_voice import synth_reply
from harness.agent.providers.base import LLM, STT, TTS
from harness.audio.frames import float_to_pcm16

CANNED = ("Sure, I can help with that.", "Let me check that for you.", "Okay, that is all set now.")


class SimStt(STT):
    """Partials after `partial_after_ms` of audio; the final takes a drawn latency (default
    median 60 ms, p99 150 ms) and returns `transcript` (tests give it the fixture text)."""

    name = "sim-stt"
    simulated = True

    def __init__(self, final_ms: str = "lognormal:60:150", transcript: str = "simulated transcript",
                 partial_after_ms: float = 300.0, seed: int = 0):
        self._final, self.transcript = Delay(final_ms), transcript
        self._partial_after = int(partial_after_ms * 16)
        self._rng = np.random.default_rng(seed)
        self._samples = 0

    def start(self) -> None:
        self._samples = 0

    def feed(self, pcm16: np.ndarray) -> str | None:
        self._samples += len(pcm16)
        if self._samples < self._partial_after:
            return None
        words = self.transcript.split()
        return " ".join(words[: max(1, len(words) * self._samples // (self._samples + self._partial_after))])

    def finish(self) -> str:
        time.sleep(self._final.draw(self._rng) / 1000)  # called in an executor, like a real model
        return self.transcript


class SimLlm(LLM):
    """Time to first token drawn (default median 80 ms, p99 200 ms), then `tokens_per_s`; with
    `stall_rate`, that share of requests also waits `stall_ms` first (a provider whose queue
    now and then stalls: the tail hedging is meant for)."""

    name = "sim-llm"
    simulated = True

    def __init__(self, ttft_ms: str = "lognormal:80:200", tokens_per_s: float = 60.0, seed: int = 0,
                 stall_rate: float = 0.0, stall_ms: str = "1500"):
        if not 0.0 <= stall_rate <= 1.0:
            raise ValueError(f"stall_rate must be within 0…1, got {stall_rate}")
        self._ttft, self._tps = Delay(ttft_ms), tokens_per_s
        self._stall_rate, self._stall = stall_rate, Delay(stall_ms)
        self._rng = np.random.default_rng(seed)

    def first_token_ms(self) -> float:
        """One request's drawn time to first token."""
        stalled = self._stall_rate and self._rng.random() < self._stall_rate
        return self._ttft.draw(self._rng) + (self._stall.draw(self._rng) if stalled else 0.0)

    async def stream(self, messages: list[dict]) -> AsyncIterator[str]:
        reply = CANNED[int(self._rng.integers(len(CANNED)))]
        await asyncio.sleep(self.first_token_ms() / 1000)
        for i, word in enumerate(reply.split(" ")):
            if i:
                await asyncio.sleep(1 / self._tps)
            yield word if i == 0 else " " + word


class SimTts(TTS):
    """First audio after a drawn delay (default median 60 ms, p99 120 ms), ~65 ms per character."""

    name = "sim-tts"
    simulated = True

    def __init__(self, ttfb_ms: str = "lognormal:60:120", ms_per_char: float = 65.0, seed: int = 0):
        self._ttfb, self._per_char = Delay(ttfb_ms), ms_per_char
        self._rng = np.random.default_rng(seed)

    def synthesize(self, text: str) -> Iterator[np.ndarray]:
        time.sleep(self._ttfb.draw(self._rng) / 1000)
        audio = float_to_pcm16(synth_reply(max(100.0, len(text) * self._per_char), self._rng))
        for a in range(0, len(audio), 3200):  # 200 ms chunks
            yield audio[a : a + 3200]
