"""The agent's end of ws-pcm: binary PCM16 frames both ways, JSON text for events.

Served by the lean framing (`transports/ws_frames.py`) after the front door's upgrade: frames
are parsed and stamped in `data_received`, and `pump` hands each one to the session right
there, with no task hop per 20 ms message.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import AsyncIterator, Callable

import aiohttp
from aiohttp import web

from harness.agent.links.base import CallerAudio, CallerEvent, CallLink, Inbound
from harness.transports import stamping
from harness.transports.ws_frames import OP_BINARY, OP_TEXT, WsFrames

MAX_MESSAGE_BYTES = 16 * 2**20


def _item(arrival_ns: int, op: int, payload: bytes) -> Inbound | None:
    if op == OP_BINARY:
        return CallerAudio(payload, arrival_ns)
    try:
        ev = json.loads(payload)
    except ValueError:
        return None
    return CallerEvent(ev, arrival_ns) if isinstance(ev, dict) else None


class WsPcmLink(CallLink):
    transport = "ws-pcm"

    def __init__(self, frames: WsFrames, call_id: str):
        super().__init__(call_id)
        self.frames = frames

    @classmethod
    def take_over(cls, transport: asyncio.Transport, call_id: str, rest: bytes = b"") -> "WsPcmLink":
        """Serve an upgraded connection: the lean framing becomes its protocol."""
        frames = WsFrames(client=False, max_message=MAX_MESSAGE_BYTES)
        transport.set_protocol(frames)
        frames.connection_made(transport)
        if rest:
            frames.data_received(rest)
        return cls(frames, call_id)

    async def inbound(self) -> AsyncIterator[Inbound]:
        async for msg in self.frames.messages():
            item = _item(*msg)
            if item is not None:
                yield item

    async def pump(self, on_item: Callable[[Inbound], None]) -> None:
        def deliver(arrival_ns: int, op: int, payload: bytes) -> None:
            item = _item(arrival_ns, op, payload)
            if item is not None:
                on_item(item)

        await self.frames.pump(deliver)

    async def send_audio(self, pcm16: bytes) -> int:
        sent = time.perf_counter_ns()
        self.frames.write(OP_BINARY, pcm16)
        return sent

    async def send_event(self, event: dict) -> None:
        self.frames.write(OP_TEXT, json.dumps(event).encode())

    async def hang_up(self, code: int = 1000, reason: str = "") -> None:
        await self.frames.close(code, reason.encode()[:120])

    def abort(self) -> None:
        """Drop the connection at once (the server is stopping)."""
        if self.frames.transport is not None:
            self.frames.transport.abort()


class AiohttpWsPcmLink(CallLink):
    """ws-pcm on aiohttp's WebSocketResponse, for an upgrade the front door never saw: one sent on
    a kept-alive connection after a plain request (aiohttp's client pools connections)."""

    transport = "ws-pcm"

    def __init__(self, ws: web.WebSocketResponse, stamper, call_id: str):
        super().__init__(call_id)
        self.ws, self._stamper = ws, stamper

    @classmethod
    async def accept(cls, request: web.Request, call_id: str) -> "AiohttpWsPcmLink":
        ws = web.WebSocketResponse(max_msg_size=0, autoping=True, heartbeat=None)
        await ws.prepare(request)
        return cls(ws, stamping.install(request.transport), call_id)

    async def inbound(self) -> AsyncIterator[Inbound]:
        try:
            async for msg in self.ws:
                now = stamping.arrival_ns(self._stamper)
                if msg.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                    item = _item(now, OP_BINARY if msg.type == aiohttp.WSMsgType.BINARY else OP_TEXT,
                                 msg.data if isinstance(msg.data, bytes) else msg.data.encode())
                    if item is not None:
                        yield item
        except ConnectionResetError:
            return

    async def send_audio(self, pcm16: bytes) -> int:
        sent = time.perf_counter_ns()
        await self.ws.send_bytes(pcm16)
        return sent

    async def send_event(self, event: dict) -> None:
        await self.ws.send_str(json.dumps(event))

    async def hang_up(self, code: int = 1000, reason: str = "") -> None:
        if not self.ws.closed:
            await self.ws.close(code=code, message=reason.encode()[:120])
