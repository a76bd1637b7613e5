"""The agent server on aiohttp: every registered transport's endpoint, one `serve_call` per call.

Each transport's endpoint (ws-pcm at /ws, Twilio Media Streams at /media-stream, WebRTC offers
at /offer and /whip, from the transport registry) turns its protocol into a `CallLink`, so the
oracle and the reference agent serve every transport with the same session code. WebSocket
upgrades an endpoint claims are taken at the listening socket by the front door (lean framing,
the load path); the rest is aiohttp.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import numpy as np
from aiohttp import web

from harness.agent.front_door import FrontDoor, token_matches
from harness.agent.links import CallerAudio, CallLink
from harness.agent.links.base import Endpoint
from harness.agent.oracle import OracleSession, TurnTruth, truth_to_json
from harness.agent.oracle_config import OracleConfig
from harness.agent.oracle_voice import word_bank
from harness.transports.registry import transport_entry, transport_names

log = logging.getLogger(__name__)


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
        self.endpoints: dict[str, Endpoint] = {}
        """Per transport served here; one whose extra is not installed is left out."""
        self.token: str | None = None
        """When set, every route but /health wants it: `Authorization: Bearer TOKEN` or `?token=`."""
        self.webrtc_idle = "silence"
        """WebRTC: what the agent sends while it has nothing to say: silence, or `nothing` (no RTP)."""
        self._listener: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return self.url_for("ws-pcm")

    def url_for(self, transport: str) -> str:
        """Where a caller reaches this server over `transport`."""
        entry = transport_entry(transport)
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{entry.url_schemes[0]}://{host}:{self.port}{entry.agent_path}"

    def authorized(self, headers, query) -> bool:
        """The request carries the server's token (or the server has none)."""
        return self.token is None or token_matches(self.token, headers.get("authorization"), query.get("token"))

    @web.middleware
    async def _check_token(self, request: web.Request, handler):
        if request.path != "/health" and not self.authorized(request.headers, request.query):
            return web.Response(status=401, headers={"WWW-Authenticate": "Bearer"},
                                text="this agent wants its token: Authorization: Bearer TOKEN (or ?token=)\n")
        return await handler(request)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._check_token])
        app.router.add_get("/health", self._health)
        for name in transport_names():
            try:
                endpoint = transport_entry(name).endpoint_class()(self)
            except ImportError:  # its extra is not installed: the other transports still serve
                continue
            endpoint.mount(app)
            self.endpoints[name] = endpoint
        return app

    def health(self) -> dict:
        out = {"agent": self.agent, "transports": list(self.endpoints), "calls_active": self.calls_active}
        for endpoint in self.endpoints.values():
            out.update(endpoint.health())
        return out

    def next_call_id(self, query, prefix: str = "call") -> str:
        """The caller's `call_id` query parameter, else a numbered one."""
        self.connections += 1
        return query.get("call_id", f"{prefix}-{self.connections}")

    async def serve_link(self, link: CallLink) -> None:
        """Serve one accepted call (endpoints call this)."""
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
        upgrades = {path: fn for e in self.endpoints.values() for path, fn in e.upgrades().items()}
        http, waiting = self._runner.server, {}
        self._listener = await asyncio.get_running_loop().create_server(
            lambda: FrontDoor(http, upgrades, self.authorized, waiting), self.host, self.port, reuse_address=True)
        self.port = self._listener.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for endpoint in self.endpoints.values():
            await endpoint.close()
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
        self.webrtc_idle = cfg.webrtc_idle
        self.log_path = log_path
        self.truth: list[TurnTruth] = []
        self._threshold = barge_in_threshold_ms
        self.message_stamps: dict[str, tuple[list[int], list[int], list[int]]] = {}
        """Per call: arrival of each caller frame; send time of each oracle chunk; when the
        oracle's playout model has each chunk heard (calibration pairs them with the caller's)."""
        self._connections = 0

    async def start(self) -> OracleServer:
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
                session.on_audio(len(item.pcm16) // 2, item.arrival_ns,
                                 np.frombuffer(item.pcm16, "<i2") if self.cfg.listen else None)
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
                    for note in session.notes:
                        f.write(json.dumps({"schema": "turnbench.oracle_note/1", "call_id": session.call_id,
                                            "note": note}) + "\n")
