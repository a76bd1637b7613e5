"""The agent's end of Twilio Media Streams: what a phone agent's `/media-stream` handler does."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from harness.agent.links.base import CallerAudio, CallerEvent, CallLink, Endpoint, Inbound, LinkRefused
from harness.transports import stamping
from harness.transports.twilio_protocol import (
    MulawDecoder,
    MulawEncoder,
    TwilioMessageError,
    b64,
    check_media_format,
    media_payload,
    parse,
)

MAX_MESSAGE_BYTES = 1 * 2**20
"""A Media Streams message is a 20 ms chunk of base64 mu-law (~230 bytes); a megabyte is plenty."""
HANDSHAKE_TIMEOUT_S = 10.0
"""A phone network sends `connected` and `start` at once; a caller that sends neither is refused."""


class TwilioLink(CallLink):
    transport = "twilio"
    can_clear = True

    def __init__(self, ws: web.WebSocketResponse, stamper, call_id: str):
        super().__init__(call_id)
        self.ws, self._stamper = ws, stamper
        self.stream_sid: str | None = None
        self.start: dict = {}
        self._enc, self._dec = MulawEncoder(), MulawDecoder()
        self._marks = 0

    @classmethod
    async def accept(cls, request: web.Request, call_id: str) -> TwilioLink:
        ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES, autoping=True, heartbeat=None)
        await ws.prepare(request)
        return cls(ws, stamping.install(request.transport), call_id)

    async def handshake(self, request: web.Request, timeout_s: float | None = None) -> None:
        """Read `connected` and `start`; anything else first, a malformed start, or no start within
        `timeout_s` is refused (closed with 1003 or 1008 and the reason)."""
        timeout_s = HANDSHAKE_TIMEOUT_S if timeout_s is None else timeout_s
        try:
            async with asyncio.timeout(timeout_s):
                await self._read_start(request)
        except TimeoutError:
            await self.hang_up(1008, "refused: no `start` message")
            raise LinkRefused(f"no `start` message within {timeout_s:g} s") from None
        except TwilioMessageError as e:
            await self.hang_up(1003, f"refused: {e}"[:120])
            raise LinkRefused(str(e)) from None

    async def _read_start(self, request: web.Request) -> None:
        async for raw in self.ws:
            if raw.type != aiohttp.WSMsgType.TEXT:
                raise TwilioMessageError("a binary frame before `start` (Media Streams messages are JSON text)")
            msg = parse(raw.data)
            event = msg.get("event")
            if event == "connected":
                continue
            if event != "start":
                raise TwilioMessageError(f"`{event or msg.get('type')}` before `start`")
            start = msg.get("start")
            if not isinstance(start, dict):
                raise TwilioMessageError("start is not a JSON object")
            check_media_format(start.get("mediaFormat"))
            params = start.get("customParameters") or {}
            if not isinstance(params, dict):
                raise TwilioMessageError("start.customParameters is not a JSON object")
            self.stream_sid = str(msg.get("streamSid") or start.get("streamSid"))
            self.start = start
            self.call_id = str(params.get("call_id") or request.query.get("call_id") or self.call_id)
            return
        raise TwilioMessageError("the stream ended before its `start` message")

    async def inbound(self) -> AsyncIterator[Inbound]:
        try:
            async for raw in self.ws:
                now = stamping.arrival_ns(self._stamper)
                if raw.type != aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    msg = parse(raw.data)
                except TwilioMessageError:
                    continue
                event = msg.get("event")
                if event == "media":
                    try:
                        yield CallerAudio(self._dec.decode(media_payload(msg), now).tobytes(), now)
                    except TwilioMessageError:
                        continue
                elif event == "stop":
                    return
                elif event is None or event == "mark":
                    yield CallerEvent(msg if event is None else {"type": "twilio.mark", **msg}, now)
        except ConnectionResetError:
            return

    async def send_audio(self, pcm16: bytes) -> int:
        text = json.dumps({"event": "media", "streamSid": self.stream_sid,
                           "media": {"payload": b64(self._enc.encode(pcm16, time.perf_counter_ns()))}})
        sent = time.perf_counter_ns()  # encoded: the chunk leaves now
        if not self.ws.closed:
            await self.ws.send_str(text)
        return sent

    async def send_mark(self, name: str) -> None:
        await self._send({"event": "mark", "mark": {"name": name}})

    async def clear(self) -> None:
        self._enc.restart()
        await self._send({"event": "clear"})

    async def send_event(self, event: dict) -> None:
        if not self.ws.closed:
            await self.ws.send_str(json.dumps(event))

    async def _send(self, msg: dict) -> None:
        if not self.ws.closed:
            await self.ws.send_str(json.dumps({**msg, "streamSid": self.stream_sid}))

    async def hang_up(self, code: int = 1000, reason: str = "") -> None:
        if not self.ws.closed:
            await self.ws.close(code=code, message=reason.encode()[:120])


TWILIO_PATH = "/media-stream"


class TwilioEndpoint(Endpoint):
    """A phone agent's Media Streams handler at /media-stream; a refused `start` (wrong media
    format) is closed with 1003 and its reason kept in `server.refused`."""

    def mount(self, app: web.Application) -> None:
        app.router.add_get(TWILIO_PATH, self._serve)

    def health(self) -> dict:
        return {"twilio_path": TWILIO_PATH}

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        link = await TwilioLink.accept(request, self.server.next_call_id(request.query, self.server.agent))
        try:
            await link.handshake(request)
        except LinkRefused as e:
            self.server.refused.append(f"twilio {link.call_id}: {e}")
            return link.ws
        await self.server.serve_link(link)
        return link.ws
