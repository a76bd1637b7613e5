"""The agent's end of Twilio Media Streams: what a phone agent's `/media-stream` handler does."""

from __future__ import annotations

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
        ws = web.WebSocketResponse(max_msg_size=0, autoping=True, heartbeat=None)
        await ws.prepare(request)
        return cls(ws, stamping.install(request.transport), call_id)

    async def handshake(self, request: web.Request) -> None:
        """Read `connected` and `start`; a wrong start is refused (and hung up) with its reason."""
        link = self
        async for raw in self.ws:
            if raw.type != aiohttp.WSMsgType.TEXT:
                break
            try:
                msg = parse(raw.data)
                if msg.get("event") == "start":
                    start = msg.get("start") or {}
                    check_media_format(start.get("mediaFormat"))
                    link.stream_sid = str(msg.get("streamSid") or start.get("streamSid"))
                    link.start = start
                    params = start.get("customParameters") or {}
                    link.call_id = str(params.get("call_id") or request.query.get("call_id") or link.call_id)
                    return
            except TwilioMessageError as e:
                await link.hang_up(1003, f"refused: {e}")
                raise LinkRefused(str(e)) from None
        raise LinkRefused("the stream ended before its `start` message")

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
