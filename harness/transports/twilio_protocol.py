"""Twilio Media Streams messages and the 8 kHz mu-law audio they carry, for both ends.

The phone network (here: the caller) opens a WebSocket to the agent and sends `connected`,
`start`, `media` every 20 ms and `stop`; the agent answers with `media`, `mark` and `clear`,
each naming the `streamSid`. Audio is base64 mu-law, 8 kHz mono.
"""

from __future__ import annotations

import base64
import json

import numpy as np

from harness.audio import mulaw
from harness.audio.frames import SAMPLE_RATE, float_to_pcm16
from harness.audio.resample import StreamResampler
from harness.errors import ProtocolViolation

WIRE_RATE = 8000
MEDIA_FORMAT = {"encoding": "audio/x-mulaw", "sampleRate": WIRE_RATE, "channels": 1}


class TwilioMessageError(ProtocolViolation):
    """A Media Streams message that is not what the protocol allows (says which field)."""


def parse(text: str) -> dict:
    """A JSON object with an `event` (or, for agent trace extensions, a `type`) field."""
    try:
        msg = json.loads(text)
    except ValueError as e:
        raise TwilioMessageError(f"malformed JSON ({e}): {text[:80]!r}") from None
    if not isinstance(msg, dict):
        raise TwilioMessageError(f"not a JSON object: {text[:80]!r}")
    if not isinstance(msg.get("event"), str) and not isinstance(msg.get("type"), str):
        raise TwilioMessageError(f"no `event` field: {text[:80]!r}")
    return msg


def media_payload(msg: dict) -> bytes:
    """The mu-law bytes of a `media` message."""
    media = msg.get("media")
    if not isinstance(media, dict) or not isinstance(media.get("payload"), str):
        raise TwilioMessageError("media message without media.payload")
    try:
        return base64.b64decode(media["payload"], validate=True)
    except ValueError as e:
        raise TwilioMessageError(f"media.payload is not base64 ({e})") from None


def check_media_format(fmt: object) -> None:
    """`start.mediaFormat` must be mu-law 8 kHz mono: the only format Media Streams carries."""
    if not isinstance(fmt, dict):
        raise TwilioMessageError("start.mediaFormat missing")
    for key, want in MEDIA_FORMAT.items():
        got = fmt.get(key)
        if str(got).lower() != str(want):
            raise TwilioMessageError(f"start.mediaFormat.{key} is {got!r}, expected {want!r}")


class _Continuity:
    """Where the audio stream is contiguous (a playout queue): a chunk that starts after the
    previous one has finished playing follows silence, so the resampler must not filter it
    together with the previous chunk's last samples (that would put a click at its start)."""

    def __init__(self, rs: StreamResampler, rate: int):
        self._rs, self._rate, self._end_ns = rs, rate, 0

    def follow(self, at_ns: int | None, n: int) -> None:
        if at_ns is None:
            return
        if at_ns > self._end_ns:
            self._rs.reset()
        self._end_ns = max(at_ns, self._end_ns) + n * 1_000_000_000 // self._rate

    def restart(self) -> None:
        self._rs.reset()
        self._end_ns = 0


class MulawEncoder(_Continuity):
    """16 kHz PCM16 → 8 kHz mu-law, chunk by chunk, no added delay."""

    def __init__(self) -> None:
        super().__init__(StreamResampler(SAMPLE_RATE, WIRE_RATE), SAMPLE_RATE)

    def encode(self, pcm16: bytes | np.ndarray, at_ns: int | None = None) -> bytes:
        """`at_ns`: when the chunk is sent, for streams with gaps (agent replies)."""
        x = np.frombuffer(pcm16, dtype="<i2") if isinstance(pcm16, (bytes, bytearray, memoryview)) else pcm16
        self.follow(at_ns, len(x))
        return mulaw.encode(float_to_pcm16(self._rs.process(x.astype(np.float32) / 32768.0)))


class MulawDecoder(_Continuity):
    """8 kHz mu-law → 16 kHz PCM16, chunk by chunk, no added delay."""

    def __init__(self) -> None:
        super().__init__(StreamResampler(WIRE_RATE, SAMPLE_RATE), WIRE_RATE)

    def decode(self, data: bytes, at_ns: int | None = None) -> np.ndarray:
        """`at_ns`: when the chunk arrived, for streams with gaps (agent replies)."""
        self.follow(at_ns, len(data))
        return float_to_pcm16(self._rs.process(mulaw.decode(data).astype(np.float32) / 32768.0))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
