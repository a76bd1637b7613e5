"""Any OpenAI-compatible speech endpoint (`POST {base_url}/audio/speech`): hosted APIs,
agent-cli's Piper/Kokoro server, Kokoro-FastAPI, openedai-speech.

The reply is read as it streams (`response_format: pcm`, raw 16-bit mono; with `stream: true`
also `stream_format: audio`, which servers that synthesise incrementally answer chunk by chunk),
resampled to 16 kHz on the way: the first audio is the first bytes the server sends. OpenAI's
PCM is 24 kHz; a server that says otherwise in `X-Sample-Rate` is believed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from concurrent.futures import Executor

import aiohttp
import numpy as np

from harness.agent.providers.base import TTS, ProviderUnavailable
from harness.agent.providers.openai_http import OpenAiEndpoint, check_reachable, connection_error
from harness.audio.frames import SAMPLE_RATE
from harness.audio.resample import StreamResampler

OPENAI_PCM_RATE = 24_000


def pcm_rate(headers, default: int) -> int:
    """The sample rate a server declares for its PCM (`X-Sample-Rate`), else `default`."""
    value = headers.get("X-Sample-Rate")
    try:
        return int(value) if value else default
    except ValueError:
        return default


class OpenAiSpeechTts(TTS):
    """Streams `/audio/speech` as PCM; yields 16 kHz int16 chunks as the bytes arrive."""

    name = "openai"

    def __init__(self, base_url: str = "http://127.0.0.1:8000/v1", model: str = "tts-1", voice: str = "alloy",
                 api_key: str | None = None, stream: bool = False, speed: float = 1.0,
                 sample_rate: int = OPENAI_PCM_RATE, timeout_s: float = 30.0):
        self.api = OpenAiEndpoint(base_url, api_key, timeout_s)
        self.model, self.voice, self.stream_audio, self.speed = model, voice, bool(stream), float(speed)
        if sample_rate not in (8000, 16000, 22050, 24000, 44100, 48000):
            raise ValueError(f"sample_rate {sample_rate!r}: expected the server's PCM rate, e.g. 24000")
        self.sample_rate = sample_rate

    def _body(self, text: str) -> dict:
        body = {"model": self.model, "input": text, "voice": self.voice, "response_format": "pcm",
                "speed": self.speed}
        return {**body, "stream_format": "audio"} if self.stream_audio else body

    def warm(self) -> None:
        """Synthesise one word before serving: the server loads its voice now, and a wrong URL,
        route, voice or key fails the agent's start (naming the URL and the server's answer)."""
        audio = check_reachable(self.api.url("audio/speech"), self.api.key, self.api.timeout_s,
                                json.dumps(self._body("Hello.")).encode())
        if len(audio) < 200:
            raise ProviderUnavailable(f"{self.api.url('audio/speech')}: {len(audio)} bytes of audio for 'Hello.'")

    async def stream(self, text: str, executor: Executor | None = None) -> AsyncIterator[np.ndarray]:
        url = self.api.url("audio/speech")
        try:
            async with self.api.session().post(url, json=self._body(text), headers=self.api.headers) as resp:
                await self.api.fail_unless_ok(url, resp)
                rs = StreamResampler(pcm_rate(resp.headers, self.sample_rate), SAMPLE_RATE)
                odd = b""
                async for data in resp.content.iter_any():
                    data = odd + data
                    odd = data[len(data) - len(data) % 2:]
                    x = np.frombuffer(data[: len(data) - len(odd)], dtype="<i2").astype(np.float32) / 32768.0
                    y = rs.process(x)
                    if y.size:
                        yield np.clip(np.round(y * 32768.0), -32768, 32767).astype(np.int16)
        except (aiohttp.ClientError, TimeoutError) as e:
            raise connection_error(url, e, self.api.timeout_s) from None

    async def close(self) -> None:
        await self.api.close()
