"""The reference agent's server: one ReferenceSession per ws-pcm call, shared models."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

import aiohttp
from aiohttp import web

from harness.agent.pipeline import PipelineConfig, Providers, ReferenceSession
from harness.agent.providers import create
from harness.agent.server import AgentServer
from harness.transports import stamping

DEFAULTS = {"vad": "silero", "stt": "pocketsphinx", "llm": "llama", "tts": "piper", "turn": "vad"}
KINDS = ("vad", "stt", "llm", "tts", "turn")
log = logging.getLogger("turnbench.agent")


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
        provider.warm()
    return Providers(**made)


class ReferenceServer(AgentServer):
    """Serves the reference pipeline. The VAD and STT keep per-utterance state, so each call
    in flight holds a model set of its own: idle sets are reused, new ones come from `factory`
    (a call that finds none free and no factory is refused)."""

    agent = "reference"

    def __init__(self, providers: Providers, cfg: PipelineConfig = PipelineConfig(),
                 host: str = "127.0.0.1", port: int = 0, factory=None, event_log: Path | None = None):
        super().__init__(host, port)
        self.providers, self.cfg = providers, cfg
        self._event_log = event_log.open("a", buffering=1) if event_log is not None else None
        self._connections = 0
        self._factory = factory
        self._idle: list[Providers] = [providers]
        self._closing: set[asyncio.Task] = set()

    async def stop(self) -> None:
        await super().stop()
        if self._event_log is not None:
            self._event_log.close()
            self._event_log = None

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
        self._connections += 1
        call = request.query.get("call_id", f"call-{self._connections}")

        async def send_event(ev: dict) -> None:
            if self._event_log is not None:  # why a turn was slow, after the fact
                self._event_log.write(json.dumps({"call": call, "t_ns": time.perf_counter_ns(), **ev}) + "\n")
            await ws.send_str(json.dumps(ev))

        session = ReferenceSession(providers, self.cfg, ws.send_bytes, send_event)
        runner = asyncio.create_task(session.run())
        runner.add_done_callback(lambda task: self._session_ended(task, ws))
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

    def _session_ended(self, task: asyncio.Task, ws: web.WebSocketResponse) -> None:
        """A pipeline that fails must not leave the caller talking to a deaf agent: log why,
        tell the caller in an event, and hang up."""
        if task.cancelled() or task.exception() is None:
            return
        err = task.exception()
        log.error("reference session failed", exc_info=err)

        async def hang_up() -> None:
            if not ws.closed:
                await ws.send_str(json.dumps({"type": "error", "message": f"{type(err).__name__}: {err}"}))
                await ws.close(code=1011, message=b"agent pipeline failed")

        closing = asyncio.get_running_loop().create_task(hang_up())
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)
