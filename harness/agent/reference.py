"""The reference agent's server: one ReferenceSession per ws-pcm call, shared models."""

from __future__ import annotations

import asyncio
import json

import aiohttp
from aiohttp import web

from harness.agent.pipeline import PipelineConfig, Providers, ReferenceSession
from harness.agent.providers import create
from harness.agent.server import AgentServer
from harness.transports import stamping

DEFAULTS = {"vad": "silero", "stt": "pocketsphinx", "llm": "llama", "tts": "piper"}


def load_providers(names: dict[str, str] | None = None, options: dict[str, dict] | None = None) -> Providers:
    """Instantiate each stage's provider by name (models load here, once, before serving)."""
    names = {**DEFAULTS, **(names or {})}
    options = options or {}
    return Providers(**{k: create(k, names[k], **options.get(k, {})) for k in ("vad", "stt", "llm", "tts")})


class ReferenceServer(AgentServer):
    """Serves the reference pipeline. Calls are handled one at a time per model set: the VAD and
    STT keep per-utterance state, so a second concurrent call gets its own instances."""

    agent = "reference"

    def __init__(self, providers: Providers, cfg: PipelineConfig = PipelineConfig(),
                 host: str = "127.0.0.1", port: int = 0, factory=None):
        super().__init__(host, port)
        self.providers, self.cfg = providers, cfg
        self._factory = factory
        self._busy = False

    def health(self) -> dict:
        return {**super().health(), "providers": self.providers.labels}

    async def _ws_pcm(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=0, heartbeat=None)
        await ws.prepare(request)
        stamper = stamping.install(request.transport)
        providers = self.providers
        if self._busy and self._factory is not None:
            providers = self._factory()
        self._busy = True
        providers.vad.reset()
        session = ReferenceSession(providers, self.cfg, ws.send_bytes, lambda ev: ws.send_str(json.dumps(ev)))
        runner = asyncio.create_task(session.run())
        got_audio = False
        try:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    got_audio = True
                    session.on_audio(msg.data, stamping.arrival_ns(stamper))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            runner.cancel()
            self._busy = False
            self.calls_served += got_audio
        return ws
