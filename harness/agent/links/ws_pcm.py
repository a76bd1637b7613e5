"""The agent's end of ws-pcm: binary PCM16 frames both ways, JSON text for events.

Served by the lean framing (`transports/ws_frames.py`) after the front door's upgrade: frames
are parsed and stamped in `data_received`, and `pump` hands each one to the session right
there, with no task hop per 20 ms message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web

from harness.agent.links.base import CallerAudio, CallerEvent, CallLink, Endpoint, Inbound
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
    def take_over(cls, transport: asyncio.Transport, call_id: str, rest: bytes = b"") -> WsPcmLink:
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
    async def accept(cls, request: web.Request, call_id: str) -> AiohttpWsPcmLink:
        ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES, autoping=True, heartbeat=None)
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


log = logging.getLogger(__name__)
WS_PATH = "/ws"


class WsPcmEndpoint(Endpoint):
    """ws-pcm at /ws: upgrades taken at the listening socket by the front door (lean framing, the
    load path); an upgrade that reaches aiohttp (a kept-alive connection) is served on aiohttp's
    WebSocket, and a plain request gets 426 saying what the endpoint is."""

    def __init__(self, server) -> None:
        super().__init__(server)
        self._lean_calls: dict[asyncio.Task, WsPcmLink] = {}

    def mount(self, app: web.Application) -> None:
        app.router.add_get(WS_PATH, self._via_aiohttp)

    def upgrades(self) -> dict:
        return {WS_PATH: self._take_over}

    def health(self) -> dict:
        return {"ws_pcm_path": WS_PATH}

    def _take_over(self, transport: asyncio.Transport, request, rest: bytes) -> None:
        link = WsPcmLink.take_over(transport, self.server.next_call_id(request.query, self.server.agent), rest)
        task = asyncio.get_running_loop().create_task(self.server.serve_link(link))
        self._lean_calls[task] = link
        task.add_done_callback(self._lean_call_done)

    def _lean_call_done(self, task: asyncio.Task) -> None:
        link = self._lean_calls.pop(task)
        link.abort()  # served: the session has hung up or the caller has gone
        if not task.cancelled() and task.exception() is not None:
            log.error("ws-pcm call %s failed", link.call_id, exc_info=task.exception())

    async def _via_aiohttp(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return web.Response(status=426, headers={"Upgrade": "websocket", "Sec-WebSocket-Version": "13"},
                                text=f"{WS_PATH} is ws-pcm: open it as a WebSocket (ws://…{WS_PATH})\n")
        link = await AiohttpWsPcmLink.accept(request, self.server.next_call_id(request.query, self.server.agent))
        await self.server.serve_link(link)
        return link.ws

    async def close(self) -> None:
        for task, link in list(self._lean_calls.items()):
            link.abort()
            task.cancel()
        if self._lean_calls:
            await asyncio.gather(*self._lean_calls, return_exceptions=True)
