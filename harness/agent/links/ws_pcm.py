"""The agent's end of ws-pcm: binary PCM16 frames both ways, JSON text for events."""

from __future__ import annotations

import json
import time
from typing import AsyncIterator

import aiohttp
from aiohttp import web

from harness.agent.links.base import CallerAudio, CallerEvent, CallLink, Inbound
from harness.transports import stamping


class WsPcmLink(CallLink):
    transport = "ws-pcm"

    def __init__(self, ws: web.WebSocketResponse, stamper, call_id: str):
        super().__init__(call_id)
        self.ws, self._stamper = ws, stamper

    @classmethod
    async def accept(cls, request: web.Request, call_id: str) -> "WsPcmLink":
        ws = web.WebSocketResponse(max_msg_size=0, autoping=True, heartbeat=None)
        await ws.prepare(request)
        return cls(ws, stamping.install(request.transport), call_id)

    async def inbound(self) -> AsyncIterator[Inbound]:
        try:
            async for msg in self.ws:
                now = stamping.arrival_ns(self._stamper)
                if msg.type == aiohttp.WSMsgType.BINARY:
                    yield CallerAudio(msg.data, now)
                elif msg.type == aiohttp.WSMsgType.TEXT:
                    try:
                        ev = json.loads(msg.data)
                    except ValueError:
                        continue
                    if isinstance(ev, dict):
                        yield CallerEvent(ev, now)
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
