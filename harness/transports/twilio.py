"""`twilio`: the caller plays the phone network of Twilio Media Streams towards the agent.

It opens the agent's WebSocket (any path), says `connected` and `start` (mu-law 8 kHz mono,
with `customParameters`), streams a `media` message per 20 ms frame and ends with `stop`.
The agent's `media` is played out at real time in order; `clear` empties what is queued at
once (a `PlayoutCleared`, which the playout model and the listener honour); a `mark` is sent
back when playout reaches it, or at once when a `clear` drops it, as Twilio does.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import secrets
import time
from collections.abc import AsyncIterator

from harness.audio.frames import SAMPLE_NS
from harness.records.received import AudioReceived, EventReceived, PlayoutCleared, Received
from harness.transports.base import TargetProtocolError, Transport, refusal_in
from harness.transports.twilio_protocol import (
    MEDIA_FORMAT,
    MulawDecoder,
    MulawEncoder,
    TwilioMessageError,
    b64,
    media_payload,
    parse,
)
from harness.transports.websocket import check_ws_url
from harness.transports.ws_client import WsClient
from harness.transports.ws_frames import OP_BINARY, WsClosed


class TwilioTransport(Transport):
    """Client side of Twilio Media Streams (turnbench is the phone network)."""

    name = "twilio"

    def __init__(self, url: str, connect_timeout_s: float = 10.0, custom_parameters: dict | None = None,
                 headers: dict | None = None):
        self.url = str(check_ws_url(url))
        self._timeout, self._headers = connect_timeout_s, headers or {}
        self.custom_parameters = {str(k): str(v) for k, v in (custom_parameters or {}).items()}
        self.stream_sid = "MZ" + secrets.token_hex(16)
        self.call_sid = "CA" + secrets.token_hex(16)
        self._ws = WsClient(self.url, self._headers, connect_timeout_s)
        self._open = False
        self._protocol_errors: list[str] = []
        self._seq = 0
        self._chunk = 0
        self._t0_ns = 0
        self._enc, self._dec = MulawEncoder(), MulawDecoder()
        self._heard_end_ns = 0
        self._marks: list[tuple[int, int, str]] = []  # heap of (due, order, name)
        self._marks_changed = asyncio.Event()
        self._mark_task: asyncio.Task | None = None
        self.marks_acked: list[tuple[str, int]] = []
        """(name, when it was sent back) for every mark, for conformance checks."""
        self._stopped = False

    async def _send(self, msg: dict) -> None:
        self._seq += 1
        self._ws.send_text(json.dumps({"event": msg.pop("event"), "sequenceNumber": str(self._seq), **msg}))

    async def connect(self) -> None:
        await self._ws.connect()
        self._open = True
        self._t0_ns = time.perf_counter_ns()
        await self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await self._send({"event": "start", "streamSid": self.stream_sid, "start": {
            "accountSid": "AC" + "0" * 32, "streamSid": self.stream_sid, "callSid": self.call_sid,
            "tracks": ["inbound"], "mediaFormat": dict(MEDIA_FORMAT),
            "customParameters": self.custom_parameters}})
        self._mark_task = asyncio.get_running_loop().create_task(self._ack_marks())

    async def send_audio(self, pcm16: bytes) -> int:
        self._chunk += 1
        ts = (time.perf_counter_ns() - self._t0_ns) // 1_000_000
        self._seq += 1
        text = json.dumps({"event": "media", "sequenceNumber": str(self._seq), "streamSid": self.stream_sid,
                           "media": {"track": "inbound", "chunk": str(self._chunk), "timestamp": str(ts),
                                     "payload": b64(self._enc.encode(pcm16))}})
        sent = time.perf_counter_ns()  # the frame leaves now, encoded: EOS is when it hits the wire
        self._ws.send_text(text)
        return sent

    async def send_event(self, event: dict) -> None:
        self._ws.send_text(json.dumps(event))

    @property
    def protocol_errors(self) -> list[str]:
        return self._ws.errors + self._protocol_errors

    async def received(self) -> AsyncIterator[Received]:
        async for now, op, data in self._ws.messages():
            if op == OP_BINARY:
                self._protocol_errors.append("binary WebSocket message: Media Streams messages are JSON text")
                continue
            try:
                text = data.decode("utf-8", "replace")
                msg = parse(text)
                item = self._handle(msg, now)
            except TwilioMessageError as e:
                # not a Media Streams message: a refusal (only looked for here, off the media path)?
                if self.refusal is None and (why := refusal_in(_json_or_none(text))) is not None:
                    self.refusal = why  # e.g. {"status": "failed", "meta": {"error": "concurrency_limit_reached"}}
                    continue
                self._protocol_errors.append(str(e))
                continue
            if item is not None:
                yield item

    def _handle(self, msg: dict, now: int) -> Received | None:
        event = msg.get("event")
        if event is None:  # the agent's own trace (an extension ws-pcm agents also send)
            return EventReceived(now, msg)
        sid = msg.get("streamSid")
        if event in ("media", "mark", "clear") and sid != self.stream_sid:
            raise TwilioMessageError(f"{event} message for streamSid {sid!r}, expected {self.stream_sid!r}")
        if event == "media":
            samples = self._dec.decode(media_payload(msg), now)
            self._heard_end_ns = max(now, self._heard_end_ns) + int(round(len(samples) * SAMPLE_NS))
            return AudioReceived(now, samples)
        if event == "mark":
            name = (msg.get("mark") or {}).get("name") if isinstance(msg.get("mark"), dict) else None
            if not isinstance(name, str):
                raise TwilioMessageError("mark message without mark.name")
            heapq.heappush(self._marks, (max(now, self._heard_end_ns), len(self.marks_acked) + len(self._marks), name))
            self._marks_changed.set()
            return None
        if event == "clear":
            self._heard_end_ns = min(self._heard_end_ns, now)
            self._dec.restart()
            self._marks = [(now, order, name) for _, order, name in self._marks]  # played out at once
            heapq.heapify(self._marks)
            self._marks_changed.set()
            return PlayoutCleared(now)
        raise TwilioMessageError(f"unknown event {event!r} from the agent (expected media, mark or clear)")

    async def _ack_marks(self) -> None:
        """Send each mark back when playout reaches it."""
        while True:
            self._marks_changed.clear()
            if not self._marks:
                await self._marks_changed.wait()
                continue
            due = self._marks[0][0]
            delay = (due - time.perf_counter_ns()) / 1e9
            if delay > 0:
                try:
                    await asyncio.wait_for(self._marks_changed.wait(), delay)
                    continue
                except TimeoutError:
                    pass
            _, _, name = heapq.heappop(self._marks)
            self.marks_acked.append((name, time.perf_counter_ns()))
            await self._send({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})

    async def close(self) -> None:
        if self._mark_task is not None:
            self._mark_task.cancel()
            self._mark_task = None
        if self._open:
            self._open = False
            try:
                if not self._stopped:
                    self._stopped = True
                    await self._send({"event": "stop", "streamSid": self.stream_sid, "stop": {
                        "accountSid": "AC" + "0" * 32, "callSid": self.call_sid}})
            except (WsClosed, OSError):
                pass
            await self._ws.close()


def _json_or_none(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return None


__all__ = ["TargetProtocolError", "TwilioTransport"]
