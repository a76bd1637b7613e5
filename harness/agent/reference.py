"""The reference agent's server: one ReferenceSession per ws-pcm call, shared models."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict

import aiohttp
from aiohttp import web

from harness.agent.pipeline import PipelineConfig, Providers, ReferenceSession
from harness.agent.providers import create
from harness.agent.server import AgentServer
from harness.transports import stamping

DEFAULTS = {"vad": "silero", "stt": "pocketsphinx", "llm": "llama", "tts": "piper", "turn": "vad"}
KINDS = ("vad", "stt", "llm", "tts", "turn")


def load_providers(names: dict[str, str] | None = None, options: dict[str, dict] | None = None,
                   llm_hedge: int = 1) -> Providers:
    """Instantiate each stage's provider by name (models load here, once, before serving).
    `llm_hedge` > 1 races that many LLM instances per reply (first token wins)."""
    names = {**DEFAULTS, **(names or {})}
    options = options or {}
    made = {k: create(k, names[k], **options.get(k, {})) for k in KINDS}
    if llm_hedge > 1:
        from harness.agent.providers.llm_hedge import HedgedLlm
        made["llm"] = HedgedLlm([made["llm"], *(create("llm", names["llm"], **options.get("llm", {}))
                                                for _ in range(llm_hedge - 1))])
    for provider in made.values():
        getattr(provider, "warm", lambda: None)()
    return Providers(**made)


class ReferenceServer(AgentServer):
    """Serves the reference pipeline. The VAD and STT keep per-utterance state, so each call
    in flight holds a model set of its own: idle sets are reused, new ones come from `factory`
    (a call that finds none free and no factory is refused)."""

    agent = "reference"

    def __init__(self, providers: Providers, cfg: PipelineConfig = PipelineConfig(),
                 host: str = "127.0.0.1", port: int = 0, factory=None):
        super().__init__(host, port)
        self.providers, self.cfg = providers, cfg
        self._factory = factory
        self._idle: list[Providers] = [providers]

    def add_idle(self, providers: Providers) -> None:
        """One more model set ready for a call in flight."""
        self._idle.append(providers)

    def health(self) -> dict:
        return {**super().health(), "providers": self.providers.labels, "pipeline": asdict(self.cfg)}

    async def _ws_pcm(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=0, heartbeat=None)
        await ws.prepare(request)
        if self._idle:
            providers = self._idle.pop()
        elif self._factory is not None:
            providers = await asyncio.get_running_loop().run_in_executor(None, self._factory)
        else:
            await ws.close(code=1013, message=b"busy: one call at a time without a provider factory")
            return ws
        stamper = stamping.install(request.transport)
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
            self._idle.append(providers)
            self.calls_served += got_audio
        return ws
