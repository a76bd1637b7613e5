"""The agent server: ws-pcm endpoint(s) on aiohttp, for the oracle (and the reference agent)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
from aiohttp import web

from harness.agent.oracle import OracleSession, TurnTruth, truth_to_json
from harness.agent.oracle_config import OracleConfig
from harness.agent.oracle_voice import word_bank
from harness.transports import stamping

WS_PATH = "/ws"


class AgentServer:
    """An aiohttp server with the ws-pcm endpoint at /ws and /health; subclasses handle calls."""

    agent = "?"

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.host, self.port = host, port
        self._runner: web.AppRunner | None = None
        self.calls_served = 0
        """Connections that streamed audio (turnbench's reachability probe does not count)."""

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}{WS_PATH}"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(WS_PATH, self._ws_pcm)
        app.router.add_get("/health", self._health)
        return app

    def health(self) -> dict:
        return {"agent": self.agent, "transports": ["ws-pcm"], "ws_pcm_path": WS_PATH}

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response(self.health())

    async def start(self):
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self):
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def _ws_pcm(self, request: web.Request) -> web.StreamResponse:  # pragma: no cover - interface
        raise NotImplementedError


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

    async def _ws_pcm(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=0, autoping=True, heartbeat=None)
        await ws.prepare(request)
        stamper = stamping.install(request.transport)
        self._connections += 1
        call_id = request.query.get("call_id", f"oracle-{self._connections}")
        cfg = self.cfg.model_copy(update={"seed": self.cfg.seed * 100_003 + self._connections})
        session = OracleSession(cfg, ws.send_bytes, lambda ev: ws.send_str(json.dumps(ev)), call_id)
        mouth = asyncio.create_task(session.run_mouth())
        try:
            async for msg in ws:
                now = stamping.arrival_ns(stamper)
                if msg.type == aiohttp.WSMsgType.BINARY:
                    session.on_audio(len(msg.data) // 2, now)
                elif msg.type == aiohttp.WSMsgType.TEXT:
                    try:
                        ev = json.loads(msg.data)
                    except ValueError:
                        continue
                    if isinstance(ev, dict) and ev.get("type") == "turnbench.hint":
                        session.on_hint(ev)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            mouth.cancel()
            await session.close()
            if session.frame_arrivals:
                self.calls_served += 1
            truths = session.finalize(self._threshold)
            self.truth.extend(truths)
            self.message_stamps[session.call_id] = (session.frame_arrivals, session.chunk_sends, session.chunk_heard)
            if self.log_path is not None:
                with self.log_path.open("a") as f:
                    for t in truths:
                        f.write(json.dumps(truth_to_json(t)) + "\n")
        return ws
