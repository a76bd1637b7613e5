"""Any OpenAI-compatible transcription endpoint (`POST {base_url}/audio/transcriptions`):
faster-whisper-server, speaches, vLLM's Whisper, hosted APIs.

The endpoint takes a whole file, so this is a batch recogniser behind a streaming interface:
the utterance is buffered as it comes and sent, as a 16 kHz WAV, when the turn ends. Like local
Whisper it has no partials (no speculation, and semantic turn detection hears no words).
"""

from __future__ import annotations

import io
import wave

import aiohttp
import numpy as np

from harness.agent.providers.base import STT
from harness.agent.providers.openai_http import OpenAiEndpoint, check_reachable, connection_error
from harness.audio.frames import SAMPLE_RATE


def wav_bytes(pcm16: np.ndarray, rate: int = SAMPLE_RATE) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(pcm16, dtype="<i2").tobytes())
    return buf.getvalue()


class OpenAiTranscriptionStt(STT):
    """Buffers the utterance; `afinish` posts it and returns the server's `text`."""

    name = "openai"
    blocking = False

    def __init__(self, base_url: str = "http://127.0.0.1:8000/v1", model: str = "whisper-1",
                 api_key: str | None = None, language: str | None = "en", timeout_s: float = 30.0):
        self.api = OpenAiEndpoint(base_url, api_key, timeout_s)
        self.model, self.language = model, language
        self._chunks: list[np.ndarray] = []

    def _fields(self) -> dict[str, str]:
        return {"model": self.model, "response_format": "json", **({"language": self.language} if self.language else {})}

    def _form(self, pcm16: np.ndarray) -> aiohttp.FormData:
        form = aiohttp.FormData()
        form.add_field("file", wav_bytes(pcm16), filename="utterance.wav", content_type="audio/wav")
        for k, v in self._fields().items():
            form.add_field(k, v)
        return form

    def warm(self) -> None:
        """Transcribe half a second of silence before serving: the server loads its model now,
        and a wrong URL, route or key fails the agent's start (naming the URL)."""
        body, content_type = multipart(self._fields(), wav_bytes(np.zeros(SAMPLE_RATE // 2, dtype=np.int16)))
        check_reachable(self.api.url("audio/transcriptions"), self.api.key, self.api.timeout_s, body, content_type)

    async def astart(self) -> None:
        self._chunks = []

    async def afeed(self, pcm16: np.ndarray) -> str | None:
        self._chunks.append(np.asarray(pcm16, dtype=np.int16))
        return None

    async def afinish(self) -> str:
        if not self._chunks:
            return ""
        audio, self._chunks = np.concatenate(self._chunks), []
        url = self.api.url("audio/transcriptions")
        try:
            async with self.api.session().post(url, data=self._form(audio), headers=self.api.headers) as resp:
                await self.api.fail_unless_ok(url, resp)
                doc = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as e:
            raise connection_error(url, e, self.api.timeout_s) from None
        return str((doc or {}).get("text", "")).strip()

    def start(self) -> None:  # a network service: the pipeline uses the async methods
        raise NotImplementedError("OpenAiTranscriptionStt is asynchronous (blocking = False)")

    async def close(self) -> None:
        await self.api.close()


def multipart(fields: dict[str, str], wav: bytes, boundary: str = "turnbench-form-boundary") -> tuple[bytes, str]:
    """A multipart/form-data body (text fields and one WAV file) for a synchronous request."""
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="utterance.wav"\r\n'
                 f"Content-Type: audio/wav\r\n\r\n".encode() + wav + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"
