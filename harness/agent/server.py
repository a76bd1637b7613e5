"""The agent server on aiohttp: every transport's endpoint, one `serve_call` per call.

ws-pcm at /ws, Twilio Media Streams at /media-stream, WebRTC offers at /offer (JSON) and
/whip (WHIP); each endpoint turns its protocol into a `CallLink`, so the oracle and the
reference agent serve every transport with the same session code. ws-pcm upgrades are taken at
the listening socket by the front door (lean framing, the load path); the rest is aiohttp.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

from aiohttp import web

from harness.agent.front_door import FrontDoor, UpgradeRequested
from harness.agent.links import CallerAudio, CallLink, LinkRefused
from harness.agent.links.twilio import TwilioLink
from harness.agent.links.ws_pcm import AiohttpWsPcmLink, WsPcmLink
from harness.agent.oracle import OracleSession, TurnTruth, truth_to_json
from harness.agent.oracle_config import OracleConfig
from harness.agent.oracle_voice import word_bank

log = logging.getLogger(__name__)

WS_PATH = "/ws"
TWILIO_PATH = "/media-stream"


class AgentServer:
    """An aiohttp server with every transport's endpoint and /health; subclasses serve calls."""

    agent = "?"

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.host, self.port = host, port
        self._runner: web.AppRunner | None = None
        self.calls_served = 0
        """Connections that streamed audio (turnbench's reachability probe does not count)."""
        self.connections = 0
        self.calls_active = 0
        """Calls being served now (a load test that ends cleanly leaves none)."""
        self.refused: list[str] = []
        """Why calls were refused (wrong media format, bad offer), in order."""
        self._webrtc = None
        self._listener: asyncio.Server | None = None
        self._lean_calls: dict[asyncio.Task, WsPcmLink] = {}

    @property
    def url(self) -> str:
        return self.url_for("ws-pcm")

    def url_for(self, transport: str) -> str:
        """Where a caller reaches this server over `transport`."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if transport == "twilio":
            return f"ws://{host}:{self.port}{TWILIO_PATH}"
        if transport == "webrtc":
            return f"http://{host}:{self.port}/offer"
        return f"ws://{host}:{self.port}{WS_PATH}"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(WS_PATH, self._ws_pcm_via_aiohttp)
        app.router.add_get(TWILIO_PATH, self._twilio)
        app.router.add_get("/health", self._health)
        try:
            from harness.agent.links.webrtc import WebRtcEndpoint
        except ImportError:  # the webrtc extra is not installed: the other transports still serve
            pass
        else:
            self._webrtc = WebRtcEndpoint(self._serve_link, host=self.host)
            self._webrtc.mount(app)
        return app

    def health(self) -> dict:
        out = {"agent": self.agent, "transports": ["ws-pcm", "twilio"], "ws_pcm_path": WS_PATH,
               "twilio_path": TWILIO_PATH, "calls_active": self.calls_active}
        if self._webrtc is not None:
            out["transports"].append("webrtc")
            out["webrtc_paths"] = {"json": "/offer", "whip": "/whip"}
        return out

    def next_call_id(self, query, prefix: str = "call") -> str:
        """The caller's `call_id` query parameter, else a numbered one."""
        self.connections += 1
        return query.get("call_id", f"{prefix}-{self.connections}")

    def _ws_pcm(self, transport: asyncio.Transport, request: UpgradeRequested, rest: bytes) -> None:
        link = WsPcmLink.take_over(transport, self.next_call_id(request.query, self.agent), rest)
        task = asyncio.get_running_loop().create_task(self._serve_link(link))
        self._lean_calls[task] = link
        task.add_done_callback(self._lean_call_done)

    def _lean_call_done(self, task: asyncio.Task) -> None:
        link = self._lean_calls.pop(task)
        link.abort()  # served: the session has hung up or the caller has gone
        if not task.cancelled() and task.exception() is not None:
            log.error("ws-pcm call %s failed", link.call_id, exc_info=task.exception())

    async def _ws_pcm_via_aiohttp(self, request: web.Request) -> web.StreamResponse:
        """/ws reached through aiohttp: an upgrade on a kept-alive connection (served on aiohttp's
        WebSocket), or a plain request (426, saying what this endpoint is)."""
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return web.Response(status=426, headers={"Upgrade": "websocket", "Sec-WebSocket-Version": "13"},
                                text=f"{WS_PATH} is ws-pcm: open it as a WebSocket (ws://…{WS_PATH})\n")
        link = await AiohttpWsPcmLink.accept(request, self.next_call_id(request.query, self.agent))
        await self._serve_link(link)
        return link.ws

    async def _twilio(self, request: web.Request) -> web.StreamResponse:
        link = await TwilioLink.accept(request, self.next_call_id(request.query, self.agent))
        try:
            await link.handshake(request)
        except LinkRefused as e:
            self.refused.append(f"twilio {link.call_id}: {e}")
            return link.ws
        await self._serve_link(link)
        return link.ws

    async def _serve_link(self, link: CallLink) -> None:
        self.calls_active += 1
        try:
            await self.serve_call(link)
        except asyncio.CancelledError:
            pass
        finally:
            self.calls_active -= 1

    async def serve_call(self, link: CallLink) -> None:  # pragma: no cover - interface
        """Serve one call until the caller hangs up."""
        raise NotImplementedError

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response(self.health())

    async def start(self):
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        http, upgrades = self._runner.server, {WS_PATH: self._ws_pcm}
        self._listener = await asyncio.get_running_loop().create_server(
            lambda: FrontDoor(http, upgrades), self.host, self.port, reuse_address=True)
        self.port = self._listener.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for task, link in list(self._lean_calls.items()):
            link.abort()
            task.cancel()
        if self._lean_calls:
            await asyncio.gather(*self._lean_calls, return_exceptions=True)
        if self._webrtc is not None:
            await self._webrtc.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self):
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()


class OracleServer(AgentServer):
    """Serves the oracle over ws-pcm on `host:port` (port 0 = any free port); keeps its truth log."""

    agent = "oracle"

    def __init__(self, cfg: OracleConfig, host: str = "127.0.0.1", port: int = 0,
                 log_path: Path | None = None, barge_in_threshold_ms: float = 500.0):
        super().__init__(host, port)
        self.cfg = cfg
        self.log_path = log_path
        self.truth: list[TurnTruth] = []
        self._threshold = barge_in_threshold_ms
        self.message_stamps: dict[str, tuple[list[int], list[int], list[int]]] = {}
        """Per call: arrival of each caller frame; send time of each oracle chunk; when the
        oracle's playout model has each chunk heard (calibration pairs them with the caller's)."""
        self._connections = 0

    async def start(self) -> "OracleServer":
        word_bank(float(self.cfg.level_dbfs))  # synthesise the voice before any call needs it
        return await super().start()

    def health(self) -> dict:
        return {**super().health(), "config": self.cfg.model_dump()}

    async def serve_call(self, link: CallLink) -> None:
        self._connections += 1
        call_id = link.call_id
        cfg = self.cfg.model_copy(update={"seed": self.cfg.seed * 100_003 + self._connections})
        session = OracleSession(cfg, link.send_audio, link.send_event, call_id,
                                clear=link.clear if link.can_clear else None,
                                packet_time=getattr(link, "packet_time", None))
        mouth = asyncio.create_task(session.run_mouth())

        def on_item(item) -> None:
            if isinstance(item, CallerAudio):
                session.on_audio(len(item.pcm16) // 2, item.arrival_ns)
            elif item.event.get("type") == "turnbench.hint":
                session.on_hint(item.event)

        try:
            await link.pump(on_item)
        finally:
            mouth.cancel()
            await session.close()
            if session.frame_arrivals:
                self.calls_served += 1
            truths = session.finalize(self._threshold)
            self.truth.extend(truths)
            self.message_stamps[session.call_id] = (session.frame_arrivals, session.chunk_sends, session.chunk_heard,
                                                    session.clear_sends)
            if self.log_path is not None:
                with self.log_path.open("a") as f:
                    for t in truths:
                        f.write(json.dumps(truth_to_json(t)) + "\n")
