"""`openai-realtime`: the caller speaks the OpenAI Realtime protocol over WebSocket.

It opens the URL (`?model=` added from `--realtime-model`), sends `session.update` (audio in and
out in one format, the server's turn detection as chosen) and waits for `session.updated`: that
is the call's setup (`setup_ms`). Then every 20 ms frame is one `input_audio_buffer.append`;
the response audio deltas (GA and beta names) are played out like any stream; the server's
events become turnbench's trace:

* `input_audio_buffer.speech_stopped` → `turn.end` (the server's turn detection);
* `conversation.item.input_audio_transcription.completed` → `stt.final` (transcript, WER);
* a response's first audio delta → `tts.first_audio`;
* `input_audio_buffer.speech_started` while the caller is playing agent audio: the client's
  side of a barge-in, as the protocol wants it: playout is cleared at once (`PlayoutCleared`)
  and `conversation.item.truncate` says how much of the item was heard.

With turn detection `none` the caller commits the buffer and asks for a response
(`input_audio_buffer.commit`, `response.create`) when it has finished each turn.
The API key comes from `OPENAI_API_KEY` (sent as a bearer token, written nowhere).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator

from harness.audio.frames import SAMPLE_NS, SAMPLE_RATE
from harness.records.received import AudioReceived, EventReceived, PlayoutCleared, Received
from harness.transports.base import TargetRefused, TargetUnreachable, Transport
from harness.transports.realtime_protocol import (
    AUDIO_DELTA,
    BETA_HEADER,
    FORMATS,
    PROTOCOLS,
    SPEECH_STARTED,
    SPEECH_STOPPED,
    TRANSCRIPTION_DONE,
    TURN_DETECTION,
    RealtimeMessageError,
    WireDecoder,
    WireEncoder,
    b64,
    b64audio,
    parse,
    session_update,
)
from harness.transports.websocket import check_ws_url
from harness.transports.ws_client import WsClient
from harness.transports.ws_frames import OP_BINARY

API_KEY_ENV = "OPENAI_API_KEY"
AUDIO_DELTAS = frozenset(AUDIO_DELTA.values())
TRACE_TYPES = frozenset({"turn.end", "stt.final", "llm.first_token", "tts.first_audio", "audio.start", "audio.stop",
                         "interrupted", "vad.start", "vad.stop"})
"""turnbench trace events a turnbench agent adds to the protocol (passed through as they are)."""


class OpenAIRealtimeTransport(Transport):
    """Client side of the OpenAI Realtime API (or any server that speaks it)."""

    name = "openai-realtime"

    def __init__(self, url: str, connect_timeout_s: float = 10.0, headers: dict | None = None,
                 protocol: str = "ga", audio_format: str = "pcm16", turn_detection: str = "server_vad",
                 silence_ms: float | None = None, model: str | None = None, transcription_model: str | None = None,
                 extra_headers: dict | None = None, instructions: str | None = None):
        for value, allowed, what in ((protocol, PROTOCOLS, "protocol"), (audio_format, FORMATS, "audio_format"),
                                     (turn_detection, TURN_DETECTION, "turn_detection")):
            if value not in allowed:
                raise ValueError(f"{what} {value!r}: expected one of {', '.join(allowed)}")
        u = check_ws_url(url)
        if model and "model" not in u.query:
            u = u.update_query(model=model)
        self.url = str(u)
        self.protocol, self.audio_format, self.turn_detection = protocol, audio_format, turn_detection
        self._session = session_update(protocol, audio_format, turn_detection, silence_ms, model,
                                       transcription_model, instructions)
        hdrs = dict(headers or {})
        key = os.environ.get(API_KEY_ENV)
        if key and not any(k.lower() == "authorization" for k in hdrs):
            hdrs["Authorization"] = f"Bearer {key}"
        if protocol == "beta":
            hdrs[BETA_HEADER[0]] = BETA_HEADER[1]
        hdrs.update(extra_headers or {})
        self._ws = WsClient(self.url, hdrs, connect_timeout_s)
        self._timeout = connect_timeout_s
        self._enc, self._dec = WireEncoder(audio_format), WireDecoder(audio_format)
        self._messages = None
        self._pending: list[tuple[int, int, bytes]] = []
        self._protocol_errors: list[str] = []
        self._open = False
        self.session: dict | None = None
        """The server's `session.updated` session, as it answered."""
        self._heard_end_ns = 0
        self._item: str | None = None
        self._item_samples: dict[str, int] = {}
        self._responses_heard: set[str] = set()
        self.truncations: list[dict] = []
        """Every `conversation.item.truncate` sent (item, audio_end_ms), for checks."""

    @property
    def protocol_errors(self) -> list[str]:
        return self._ws.errors + self._protocol_errors

    async def connect(self) -> None:
        t0 = time.perf_counter_ns()
        await self._ws.connect()
        self._open = True
        self._messages = self._ws.messages()
        self._ws.send_text(json.dumps(self._session))
        deadline = t0 + int(self._timeout * 1e9)
        try:
            while True:
                left = (deadline - time.perf_counter_ns()) / 1e9
                if left <= 0:
                    raise TimeoutError
                msg = await asyncio.wait_for(anext(self._messages), left)
                now, op, data = msg
                if op == OP_BINARY:
                    continue
                try:
                    event = parse(data.decode("utf-8", "replace"))
                except RealtimeMessageError as e:
                    self._protocol_errors.append(str(e))
                    continue
                kind = event["type"]
                if kind == "error":
                    raise TargetRefused(f"session.update refused: {_error_text(event)} ({self.url})")
                if kind == "session.updated":
                    self.session = event.get("session") if isinstance(event.get("session"), dict) else {}
                    break
                if kind != "session.created":
                    self._pending.append(msg)
        except StopAsyncIteration:
            await self.close()
            raise TargetUnreachable(f"{self.url}: the server closed the connection before `session.updated`") from None
        except TimeoutError:
            await self.close()
            raise TargetUnreachable(f"{self.url}: no `session.updated` within {self._timeout:g} s of "
                                    "`session.update`") from None
        except BaseException:
            await self.close()
            raise
        self.setup_ms = round((time.perf_counter_ns() - t0) / 1e6, 3)

    async def send_audio(self, pcm16: bytes) -> int:
        text = json.dumps({"type": "input_audio_buffer.append", "audio": b64(self._enc.encode(pcm16))})
        sent = time.perf_counter_ns()
        self._ws.send_text(text)
        return sent

    async def send_event(self, event: dict) -> None:
        self._ws.send_text(json.dumps(event))

    async def caller_turn_ended(self, kind: str) -> None:
        """Turn detection `none`: the client says when the turn is over (a backchannel is not a turn)."""
        if self.turn_detection == "none" and kind != "backchannel" and self._open:
            self._ws.send_text(json.dumps({"type": "input_audio_buffer.commit"}))
            self._ws.send_text(json.dumps({"type": "response.create"}))

    async def received(self) -> AsyncIterator[Received]:
        pending, self._pending = self._pending, []
        for msg in pending:
            for item in self._handle(*msg):
                yield item
        async for msg in self._messages:
            for item in self._handle(*msg):
                yield item

    def _handle(self, now: int, op: int, data: bytes) -> list[Received]:
        if op == OP_BINARY:
            self._protocol_errors.append("binary WebSocket message: Realtime messages are JSON text")
            return []
        try:
            msg = parse(data.decode("utf-8", "replace"))
            kind = msg["type"]
            if kind in AUDIO_DELTAS:
                return self._audio(now, msg)
            if kind == SPEECH_STARTED:
                return self._speech_started(now, msg)
            if kind == SPEECH_STOPPED:
                return [EventReceived(now, {"type": "turn.end", "source": kind, "audio_end_ms": msg.get("audio_end_ms")})]
            if kind == TRANSCRIPTION_DONE:
                text = msg.get("transcript")
                if not isinstance(text, str):
                    raise RealtimeMessageError(f"{kind} without a string `transcript`")
                return [EventReceived(now, {"type": "stt.final", "source": kind, "text": text})]
            if kind == "error":
                self._protocol_errors.append(f"server error: {_error_text(msg)}")
                return []
            if kind in ("response.created", "response.done"):
                response = msg.get("response") if isinstance(msg.get("response"), dict) else {}
                return [EventReceived(now, {"type": kind, "response_id": response.get("id"),
                                            "status": response.get("status")})]
            if kind in TRACE_TYPES:
                return [EventReceived(now, msg)]
        except RealtimeMessageError as e:
            self._protocol_errors.append(str(e))
        return []

    def _audio(self, now: int, msg: dict) -> list[Received]:
        samples = self._dec.decode(b64audio(msg, "delta"), now)
        self._heard_end_ns = max(now, self._heard_end_ns) + int(round(len(samples) * SAMPLE_NS))
        item = msg.get("item_id")
        out: list[Received] = []
        if isinstance(item, str):
            self._item = item
            self._item_samples[item] = self._item_samples.get(item, 0) + len(samples)
        response = msg.get("response_id")
        key = response if isinstance(response, str) else item
        if key is not None and key not in self._responses_heard:
            self._responses_heard.add(key)
            out.append(EventReceived(now, {"type": "tts.first_audio", "source": msg["type"], "response_id": response}))
        out.append(AudioReceived(now, samples))
        return out

    def _speech_started(self, now: int, msg: dict) -> list[Received]:
        event = EventReceived(now, {"type": "vad.start", "source": SPEECH_STARTED,
                                    "audio_start_ms": msg.get("audio_start_ms")})
        if self._heard_end_ns <= now:
            return [event]  # nothing playing: nothing to stop
        unheard = int((self._heard_end_ns - now) / SAMPLE_NS)
        self._heard_end_ns = now
        self._dec.restart()
        if self._item is not None:
            played = max(0, self._item_samples.get(self._item, 0) - unheard)
            truncate = {"type": "conversation.item.truncate", "item_id": self._item, "content_index": 0,
                        "audio_end_ms": played * 1000 // SAMPLE_RATE}
            self.truncations.append(truncate)
            self._ws.send_text(json.dumps(truncate))
        return [event, PlayoutCleared(now)]

    async def close(self) -> None:
        if self._open:
            self._open = False
            await self._ws.close()


def _error_text(event: dict) -> str:
    err = event.get("error") if isinstance(event.get("error"), dict) else {}
    code = err.get("code") or err.get("type") or "error"
    return f"{code}: {err.get('message') or event.get('message') or '?'}"[:300]

