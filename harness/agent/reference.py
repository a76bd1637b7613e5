"""The reference agent's server: one ReferenceSession per call, over any transport."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

from harness.agent.links import CallerAudio, CallLink
from harness.agent.pipeline import PipelineConfig, Providers, ReferenceSession
from harness.agent.providers import create
from harness.agent.providers.registry import DEFAULTS, STAGES
from harness.agent.server import AgentServer

KINDS = STAGES
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
        made["llm"] = HedgedLlm([made["llm"], *(create("llm", names["llm"], **racer_options(options.get("llm", {}),
                                                                                           made["llm"], i))
                                                for i in range(1, llm_hedge))])
    for provider in made.values():
        provider.warm()
    return Providers(**made)


def racer_options(options: dict, first, i: int) -> dict:
    """Options of the i-th extra racer of a hedge: a seeded (simulated) provider gets its own
    seed, or every racer would draw the same latencies and the race would be a tie."""
    import inspect
    if "seed" in inspect.signature(type(first).__init__).parameters:
        return {**options, "seed": int(options.get("seed", 0)) + 1000 * i}
    return options


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

    async def serve_call(self, link: CallLink) -> None:
        if self._idle:
            providers = self._idle.pop()
        elif self._factory is not None:
            providers = await asyncio.get_running_loop().run_in_executor(None, self._factory)
        else:
            await link.hang_up(1013, "busy: one call at a time without a provider factory")
            return
        providers.vad.reset()
        call = link.call_id

        async def send_event(ev: dict) -> None:
            if self._event_log is not None:  # why a turn was slow, after the fact
                self._event_log.write(json.dumps({"call": call, "t_ns": time.perf_counter_ns(), **ev}) + "\n")
            if ev.get("type") == "interrupted":  # a phone agent stops on barge-in by clearing playout
                await link.clear()
            await link.send_event(ev)

        self._sessions_started = getattr(self, "_sessions_started", 0) + 1
        session = ReferenceSession(providers, self.cfg, link.send_audio, send_event, call_index=self._sessions_started)
        runner = asyncio.create_task(session.run())
        runner.add_done_callback(lambda task: self._session_ended(task, link))
        got_audio = False
        try:
            async for item in link.inbound():
                if isinstance(item, CallerAudio):
                    got_audio = True
                    session.on_audio(item.pcm16, item.arrival_ns)
        finally:
            runner.cancel()
            self._idle.append(providers)
            self.calls_served += got_audio

    def _session_ended(self, task: asyncio.Task, link: CallLink) -> None:
        """A pipeline that fails must not leave the caller talking to a deaf agent: log why,
        tell the caller in an event, and hang up."""
        if task.cancelled() or task.exception() is None:
            return
        err = task.exception()
        log.error("reference session failed", exc_info=err)

        async def hang_up() -> None:
            try:
                await link.send_event({"type": "error", "message": f"{type(err).__name__}: {err}"})
                await link.hang_up(1011, "agent pipeline failed")
            except (ConnectionError, RuntimeError):
                pass

        closing = asyncio.get_running_loop().create_task(hang_up())
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)
