"""The OpenAI Realtime protocol over WebSocket, for both ends: event names (GA and beta), the
session's audio formats and turn detection, and the audio each format carries.

Only what a voice benchmark needs is used (docs/transports.md, "openai-realtime", lists it):

client → server: `session.update`, `input_audio_buffer.append`, `input_audio_buffer.commit` and
`response.create` (turn detection `none`), `conversation.item.truncate` (after a barge-in).

server → client: `session.created`/`session.updated`, `error`, the response's audio deltas,
`input_audio_buffer.speech_started`/`speech_stopped`/`committed`,
`conversation.item.input_audio_transcription.completed`, `response.created`, `response.done`.

GA and beta differ in the session's shape (GA: `session.type = "realtime"`, audio under
`session.audio.input/output` with `format: {"type": "audio/pcm", "rate": 24000}`; beta:
`input_audio_format: "pcm16"` etc. at the top level, and the `OpenAI-Beta: realtime=v1` header)
and in the response event names (GA `response.output_audio.delta`, beta `response.audio.delta`).
"""

from __future__ import annotations

import base64
import json

import numpy as np

from harness.audio import alaw, mulaw
from harness.audio.frames import SAMPLE_RATE, float_to_pcm16
from harness.audio.resample import StreamResampler
from harness.errors import ProtocolViolation

PROTOCOLS = ("ga", "beta")
FORMATS = ("pcm16", "g711_ulaw", "g711_alaw")
TURN_DETECTION = ("server_vad", "semantic_vad", "none")
WIRE_RATE = {"pcm16": 24_000, "g711_ulaw": 8_000, "g711_alaw": 8_000}
GA_FORMAT = {"pcm16": {"type": "audio/pcm", "rate": 24_000}, "g711_ulaw": {"type": "audio/pcmu"},
             "g711_alaw": {"type": "audio/pcma"}}
BETA_HEADER = ("OpenAI-Beta", "realtime=v1")

AUDIO_DELTA = {"ga": "response.output_audio.delta", "beta": "response.audio.delta"}
AUDIO_DONE = {"ga": "response.output_audio.done", "beta": "response.audio.done"}
SPEECH_STARTED = "input_audio_buffer.speech_started"
SPEECH_STOPPED = "input_audio_buffer.speech_stopped"
COMMITTED = "input_audio_buffer.committed"
TRANSCRIPTION_DONE = "conversation.item.input_audio_transcription.completed"


class RealtimeMessageError(ProtocolViolation):
    """A Realtime message that is not what the protocol allows (says which field)."""


def parse(text: str) -> dict:
    """A JSON object with a string `type`."""
    try:
        msg = json.loads(text)
    except ValueError as e:
        raise RealtimeMessageError(f"malformed JSON ({e}): {text[:80]!r}") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise RealtimeMessageError(f"not a JSON object with a `type`: {text[:80]!r}")
    return msg


def b64audio(msg: dict, field: str) -> bytes:
    value = msg.get(field)
    if not isinstance(value, str):
        raise RealtimeMessageError(f"{msg.get('type')} without a base64 `{field}`")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError as e:
        raise RealtimeMessageError(f"{msg.get('type')}.{field} is not base64 ({e})") from None


def session_update(protocol: str, fmt: str, turn_detection: str, silence_ms: float | None = None,
                   model: str | None = None, transcription_model: str | None = None,
                   instructions: str | None = None) -> dict:
    """The caller's `session.update`: audio in and out in `fmt`, the server's turn detection
    (`server_vad` with `silence_ms` when given, `semantic_vad`, or `none`: the caller commits)."""
    if turn_detection == "none":
        td = None
    else:
        td = {"type": turn_detection}
        if turn_detection == "server_vad" and silence_ms is not None:
            td["silence_duration_ms"] = int(silence_ms)
    transcription = {"model": transcription_model} if transcription_model else None
    if protocol == "ga":
        session: dict = {"type": "realtime", "output_modalities": ["audio"], "audio": {
            "input": {"format": GA_FORMAT[fmt], "turn_detection": td},
            "output": {"format": GA_FORMAT[fmt]}}}
        if transcription:
            session["audio"]["input"]["transcription"] = transcription
        if model:
            session["model"] = model
    else:
        session = {"modalities": ["audio", "text"], "input_audio_format": fmt, "output_audio_format": fmt,
                   "turn_detection": td}
        if transcription:
            session["input_audio_transcription"] = transcription
    if instructions:
        session["instructions"] = instructions
    return {"type": "session.update", "session": session}


def read_session(session: object) -> tuple[str, str, str]:
    """(protocol, format, turn detection) of a client's `session.update` session, either shape;
    RealtimeMessageError for a format this end cannot carry."""
    if not isinstance(session, dict):
        raise RealtimeMessageError("session.update without a `session` object")
    audio = session.get("audio")
    if session.get("type") == "realtime" or isinstance(audio, dict):
        inp = (audio or {}).get("input") or {}
        fmt = _ga_format(inp.get("format"))
        td = inp.get("turn_detection", {"type": "server_vad"})
        return "ga", fmt, (td or {}).get("type", "server_vad") if td is not None else "none"
    fmt = session.get("input_audio_format", "pcm16")
    if fmt not in FORMATS:
        raise RealtimeMessageError(f"session.input_audio_format {fmt!r}: expected one of {', '.join(FORMATS)}")
    out = session.get("output_audio_format", fmt)
    if out != fmt:
        raise RealtimeMessageError(f"session.output_audio_format {out!r} differs from the input's {fmt!r}")
    td = session.get("turn_detection", {"type": "server_vad"})
    return "beta", fmt, (td or {}).get("type", "server_vad") if td is not None else "none"


def _ga_format(fmt: object) -> str:
    if fmt is None:
        return "pcm16"
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    for name, spec in GA_FORMAT.items():
        if kind == spec["type"]:
            rate = fmt.get("rate", spec.get("rate"))
            if rate != spec.get("rate"):
                raise RealtimeMessageError(f"session.audio.input.format.rate {rate!r}: {kind} is {spec.get('rate')} Hz")
            return name
    raise RealtimeMessageError(f"session.audio.input.format {fmt!r}: expected audio/pcm (24 kHz), audio/pcmu or "
                               "audio/pcma")


class _Codec:
    """One direction's audio: 16 kHz PCM16 ↔ the wire format, chunk by chunk with no added delay
    (the resampler filters across chunk edges only where the stream is contiguous in time)."""

    def __init__(self, fmt: str, from_rate: int, to_rate: int):
        if fmt not in FORMATS:
            raise ValueError(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")
        self.fmt, self.rate_in = fmt, from_rate
        self._rs = StreamResampler(from_rate, to_rate)
        self._end_ns = 0

    def _follow(self, at_ns: int | None, n: int) -> None:
        if at_ns is None:
            return
        if at_ns > self._end_ns:  # silence was heard in between: a new stretch of audio
            self._rs.reset()
        self._end_ns = max(at_ns, self._end_ns) + n * 1_000_000_000 // self.rate_in

    def restart(self) -> None:
        self._rs.reset()
        self._end_ns = 0


class WireEncoder(_Codec):
    """16 kHz PCM16 → the format's bytes (24 kHz PCM16LE, or 8 kHz G.711)."""

    def __init__(self, fmt: str):
        super().__init__(fmt, SAMPLE_RATE, WIRE_RATE.get(fmt, SAMPLE_RATE))

    def encode(self, pcm16: bytes | np.ndarray, at_ns: int | None = None) -> bytes:
        x = np.frombuffer(pcm16, dtype="<i2") if isinstance(pcm16, (bytes, bytearray, memoryview)) else pcm16
        self._follow(at_ns, len(x))
        y = float_to_pcm16(self._rs.process(x.astype(np.float32) / 32768.0))
        if self.fmt == "g711_ulaw":
            return mulaw.encode(y)
        if self.fmt == "g711_alaw":
            return alaw.encode(y)
        return y.astype("<i2").tobytes()


class WireDecoder(_Codec):
    """The format's bytes → 16 kHz PCM16."""

    def __init__(self, fmt: str):
        super().__init__(fmt, WIRE_RATE.get(fmt, SAMPLE_RATE), SAMPLE_RATE)

    def decode(self, data: bytes, at_ns: int | None = None) -> np.ndarray:
        if self.fmt == "g711_ulaw":
            x = mulaw.decode(data)
        elif self.fmt == "g711_alaw":
            x = alaw.decode(data)
        else:
            x = np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2")
        self._follow(at_ns, len(x))
        return float_to_pcm16(self._rs.process(x.astype(np.float32) / 32768.0))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
