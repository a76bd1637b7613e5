"""The agent's end of WebRTC: JSON offer/answer at /offer and WHIP at /whip, one link per peer."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator

from aiohttp import web
from aiortc import RTCSessionDescription  # noqa: E402  (webrtc_media says which extra is missing)

from harness.agent.links.base import CallerAudio, CallerEvent, CallLink, Endpoint, Inbound
from harness.transports.webrtc_media import (
    PacedOutput,
    PacketTrack,
    ReceivedAudio,
    peer_connection,
    restrict_candidates,
    sdp_has_audio,
    track_ended,
)


class WebRtcLink(CallLink):
    """One peer connection. Outgoing audio is a paced stream (`clear` empties what is queued)."""

    transport = "webrtc"
    can_clear = True

    def __init__(self, pc, call_id: str, idle: str = "silence"):
        super().__init__(call_id)
        self.pc = pc
        self.track = PacketTrack()
        self.out = PacedOutput(self.track, idle)
        self._inbox: asyncio.Queue[Inbound | None] = asyncio.Queue()
        self._channel = None
        self._audio: ReceivedAudio | None = None
        self._tasks: set[asyncio.Task] = set()
        pc.addTrack(self.track)
        pc.on("track", self._on_track)
        pc.on("datachannel", self._on_channel)
        pc.on("connectionstatechange", self._on_state)

    def _on_track(self, track) -> None:
        if track.kind != "audio":
            return
        receiver = next(t.receiver for t in self.pc.getTransceivers() if t.receiver.track is track)
        self._audio = ReceivedAudio(receiver, self._on_audio)
        task = asyncio.get_running_loop().create_task(self._until_ended(track))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_audio(self, arrival_ns: int, samples) -> None:
        self._inbox.put_nowait(CallerAudio(samples.tobytes(), arrival_ns))

    async def _until_ended(self, track) -> None:
        await track_ended(track)
        self._inbox.put_nowait(None)

    def _on_channel(self, channel) -> None:
        if self._channel is None:
            self._channel = channel

            @channel.on("message")
            def on_message(message) -> None:
                try:
                    event = json.loads(message)
                except (ValueError, TypeError):
                    return
                if isinstance(event, dict):
                    self._inbox.put_nowait(CallerEvent(event, time.perf_counter_ns()))

    def _on_state(self) -> None:
        if self.pc.connectionState in ("failed", "closed"):
            self._inbox.put_nowait(None)

    async def inbound(self) -> AsyncIterator[Inbound]:
        self.out.start()
        while True:
            item = await self._inbox.get()
            if item is None:
                return
            yield item

    async def send_audio(self, pcm16: bytes) -> int:
        return self.out.put(pcm16)

    async def clear(self) -> None:
        self.out.clear()

    def packet_time(self, t_ns: int) -> int:
        return self.out.packet_time(t_ns)

    async def send_event(self, event: dict) -> None:
        if self._channel is not None and self._channel.readyState == "open":
            self._channel.send(json.dumps(event))

    async def hang_up(self, code: int = 1000, reason: str = "") -> None:
        self.out.stop()
        for task in list(self._tasks):
            task.cancel()
        await self.pc.close()
        self._inbox.put_nowait(None)


class WebRtcEndpoint(Endpoint):
    """HTTP signalling for the agent server; each accepted offer becomes a served `WebRtcLink`."""

    def __init__(self, server, ice_servers: tuple[str, ...] = ()):
        super().__init__(server)
        self._serve, self._ice = server.serve_link, ice_servers
        self._idle = getattr(server, "webrtc_idle", "silence")
        """What the outgoing stream carries where nothing is queued (`PacedOutput`)."""
        restrict_candidates(server.host)
        self.links: dict[str, WebRtcLink] = {}
        self._tasks: set[asyncio.Task] = set()
        self._count = 0

    def health(self) -> dict:
        return {"webrtc_paths": {"json": "/offer", "whip": "/whip"}}

    def mount(self, app: web.Application) -> None:
        app.router.add_post("/offer", self._json_offer)
        app.router.add_post("/whip", self._whip_offer)
        app.router.add_delete("/whip/{id}", self._whip_delete)
        app.router.add_patch("/whip/{id}", self._whip_patch)

    async def _answer(self, offer_sdp: str, call_id: str) -> tuple[str, WebRtcLink]:
        pc = peer_connection(self._ice)
        link = WebRtcLink(pc, call_id, self._idle)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return pc.localDescription.sdp, link

    def _start(self, peer_id: str, link: WebRtcLink) -> None:
        self.links[peer_id] = link

        async def serve() -> None:
            try:
                await self._serve(link)
            finally:
                await link.hang_up()
                self.links.pop(peer_id, None)

        task = asyncio.get_running_loop().create_task(serve())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _call_id(self, request: web.Request, body: dict | None = None) -> str:
        self._count += 1
        return str((body or {}).get("call_id") or request.query.get("call_id") or f"webrtc-{self._count}")

    async def _json_offer(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": "the offer must be JSON {\"sdp\": …, \"type\": \"offer\"}"}, status=400)
        if not isinstance(body, dict) or body.get("type") != "offer" or not isinstance(body.get("sdp"), str):
            return web.json_response({"error": "expected {\"sdp\": …, \"type\": \"offer\"}"}, status=400)
        if not sdp_has_audio(body["sdp"]):
            return web.json_response({"error": "the offer SDP has no audio m-line"}, status=400)
        peer_id = secrets.token_hex(8)
        try:
            sdp, link = await self._answer(body["sdp"], self._call_id(request, body))
        except ValueError as e:
            return web.json_response({"error": f"cannot answer this offer: {e}"}, status=400)
        self._start(peer_id, link)
        return web.json_response({"sdp": sdp, "type": "answer", "pc_id": peer_id})

    async def _whip_offer(self, request: web.Request) -> web.Response:
        if request.content_type != "application/sdp":
            return web.Response(status=415, text="WHIP offers are application/sdp")
        offer = await request.text()
        if not sdp_has_audio(offer):
            return web.Response(status=400, text="the offer SDP has no audio m-line")
        peer_id = secrets.token_hex(8)
        try:
            sdp, link = await self._answer(offer, self._call_id(request))
        except ValueError as e:
            return web.Response(status=400, text=f"cannot answer this offer: {e}")
        self._start(peer_id, link)
        return web.Response(status=201, text=sdp, content_type="application/sdp",
                            headers={"Location": f"/whip/{peer_id}", "ETag": f'"{peer_id}"'})

    async def _whip_delete(self, request: web.Request) -> web.Response:
        link = self.links.pop(request.match_info["id"], None)
        if link is None:
            return web.Response(status=404, text="no such WHIP session")
        await link.hang_up()
        return web.Response(status=200)

    async def _whip_patch(self, request: web.Request) -> web.Response:
        status = 404 if request.match_info["id"] not in self.links else 405
        return web.Response(status=status, text="trickle ICE is not supported: candidates are in the offer")

    async def close(self) -> None:
        for link in list(self.links.values()):
            await link.hang_up()
        for task in list(self._tasks):
            task.cancel()
