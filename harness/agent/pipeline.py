"""The reference agent's streaming pipeline for one call.

caller audio → VAD (Silero) → turn detection (silence) → STT (streaming; final at end of turn)
→ LLM (streaming tokens) → TTS clause by clause → audio out at real-time pace, with barge-in
(speech over the agent cancels LLM and TTS and stops the audio at once) and backchannels
(short and lexically "yeah", "okay", … do not). Every stage reports its own duration as a JSON
event on the same connection, so turnbench can split the latency into stages.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable

import numpy as np

from harness.agent.providers.base import LLM, STT, TTS, VAD
from harness.audio.frames import FRAME_NS, FRAME_SAMPLES
from harness.caller.pacing import sleep_until

BACKCHANNEL_WORDS = {"yeah", "yes", "yep", "okay", "ok", "right", "sure", "uh", "huh", "mm", "hmm", "mhm"}
CLAUSE_END = re.compile(r"(?<=[.!?;:,])\s+")


@dataclass
class PipelineConfig:
    """How the reference agent takes turns."""

    eot_silence_ms: float = 600.0
    vad_threshold: float = 0.5
    barge_in_ms: float = 250.0
    """Speech over the agent for this long, not lexically a backchannel, interrupts it."""
    backchannel_max_ms: float = 800.0
    """Speech over the agent longer than this interrupts it whatever the words."""
    preroll_ms: float = 200.0


@dataclass
class Providers:
    vad: VAD
    stt: STT
    llm: LLM
    tts: TTS

    @property
    def labels(self) -> dict:
        return {k: {"name": p.name, "simulated": p.simulated} for k, p in self.__dict__.items()}


@dataclass
class _Speech:
    """The caller's current stretch of speech."""

    started_ns: int
    last_voice_ns: int
    over_agent: bool
    partial: str = ""


def is_backchannel(text: str) -> bool:
    """Lexically a backchannel: only words like "yeah", "okay", "uh huh", "mm hmm"."""
    words = re.findall(r"[a-z]+", text.lower())
    return bool(words) and all(w in BACKCHANNEL_WORDS for w in words)


class ReferenceSession:
    """One call's pipeline. Feed frames with `on_audio`; run `run()` for as long as the call lasts."""

    def __init__(self, providers: Providers, cfg: PipelineConfig,
                 send_audio: Callable[[bytes], Awaitable[None]], send_event: Callable[[dict], Awaitable[None]]):
        self.p, self.cfg = providers, cfg
        self._send_audio, self._send_event = send_audio, send_event
        self._frames: asyncio.Queue[tuple[int, np.ndarray]] = asyncio.Queue()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="asr")
        self._out: asyncio.Queue[np.ndarray | None] = asyncio.Queue()
        self._speech: _Speech | None = None
        self._preroll: list[np.ndarray] = []
        self._vad_buf = np.zeros(0, dtype=np.float32)
        self._response: asyncio.Task | None = None
        self._speaking = False
        self._history: list[dict] = []
        self._voiced = False
        self.turns = 0

    # -- input -------------------------------------------------------------------------------

    def on_audio(self, pcm: bytes, arrival_ns: int) -> None:
        self._frames.put_nowait((arrival_ns, np.frombuffer(pcm, dtype="<i2").copy()))

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        mouth = loop.create_task(self._mouth())
        try:
            while True:
                arrival, frame = await self._frames.get()
                voiced = await loop.run_in_executor(self._pool, self._listen, frame)
                await self._after_frame(arrival, frame, voiced)
        finally:
            mouth.cancel()
            if self._response is not None:
                self._response.cancel()
            self._pool.shutdown(wait=False, cancel_futures=True)

    def _listen(self, frame: np.ndarray) -> bool:
        """In the ASR thread: VAD over full windows, and STT on the frame when in speech."""
        self._vad_buf = np.concatenate([self._vad_buf, frame.astype(np.float32) / 32768.0])
        w = self.p.vad.window_samples
        voiced = None
        while len(self._vad_buf) >= w:
            prob = self.p.vad.speech_prob(self._vad_buf[:w])
            self._vad_buf = self._vad_buf[w:]
            voiced = bool(voiced) or prob >= self.cfg.vad_threshold
        if self._speech is not None:
            partial = self.p.stt.feed(frame)
            if partial:
                self._speech.partial = partial
        if voiced is not None:  # frames are 20 ms, windows 32 ms: a frame without a window keeps the last verdict
            self._voiced = voiced
        return self._voiced

    async def _after_frame(self, now: int, frame: np.ndarray, voiced: bool) -> None:
        loop = asyncio.get_running_loop()
        if self._speech is None:
            self._preroll = (self._preroll + [frame])[-int(self.cfg.preroll_ms / 20):]
            if not voiced:
                return
            talking = self._speaking or self._response is not None
            self._speech = _Speech(now, now, talking)
            pre = self._preroll
            await loop.run_in_executor(self._pool, lambda: (self.p.stt.start(), [self.p.stt.feed(f) for f in pre]))
            await self._event({"type": "vad.start", "over_agent": talking})
            return
        sp = self._speech
        if voiced:
            sp.last_voice_ns = now
            dur_ms = (now - sp.started_ns) / 1e6
            if sp.over_agent and (dur_ms >= self.cfg.backchannel_max_ms or
                                  (dur_ms >= self.cfg.barge_in_ms and sp.partial and not is_backchannel(sp.partial))):
                await self._interrupt()
                sp.over_agent = False
            return
        if (now - sp.last_voice_ns) / 1e6 < self.cfg.eot_silence_ms:
            return
        # end of turn: silence long enough
        self._speech = None
        await self._event({"type": "vad.stop"})
        t0 = time.perf_counter_ns()
        text = await loop.run_in_executor(self._pool, self.p.stt.finish)
        if sp.over_agent and (not text or is_backchannel(text)):  # said over the agent: never a turn of its own
            await self._event({"type": "backchannel.ignored", "text": text})
            return
        await self._event({"type": "turn.end"})
        await self._event({"type": "stt.final", "text": text, "duration_ms": round((time.perf_counter_ns() - t0) / 1e6, 3)})
        if not text.strip():
            return
        await self._interrupt()
        self.turns += 1
        self._response = loop.create_task(self._respond(text, time.perf_counter_ns()))

    # -- response ----------------------------------------------------------------------------

    async def _respond(self, text: str, t_final: int) -> None:
        loop = asyncio.get_running_loop()
        self._history = (self._history + [{"role": "user", "content": text}])[-6:]
        reply, pending, first_token, first_audio = "", "", None, None
        try:
            async for delta in self.p.llm.stream(list(self._history)):
                if first_token is None:
                    first_token = time.perf_counter_ns()
                    await self._event({"type": "llm.first_token", "duration_ms": round((first_token - t_final) / 1e6, 3)})
                reply += delta
                pending += delta
                *clauses, pending = CLAUSE_END.split(pending)
                for clause in clauses:
                    first_audio = await self._speak(clause, first_audio, loop)
            if pending.strip():
                await self._speak(pending, first_audio, loop)
            self._history.append({"role": "assistant", "content": reply})
        finally:
            self._response = None

    async def _speak(self, clause: str, first_audio: int | None, loop) -> int | None:
        if not clause.strip():
            return first_audio
        t0 = time.perf_counter_ns()
        chunks = await loop.run_in_executor(None, lambda: list(self.p.tts.synthesize(clause)))
        if first_audio is None:
            first_audio = time.perf_counter_ns()
            await self._event({"type": "tts.first_audio", "duration_ms": round((first_audio - t0) / 1e6, 3)})
        for c in chunks:
            self._out.put_nowait(c)
        return first_audio

    async def _interrupt(self) -> None:
        """Barge-in: cancel generation and drop every sample not yet sent."""
        was = self._speaking or self._response is not None
        if self._response is not None:
            self._response.cancel()
            self._response = None
        while not self._out.empty():
            self._out.get_nowait()
        if was:
            self._speaking = False
            await self._event({"type": "interrupted"})

    # -- output ------------------------------------------------------------------------------

    async def _mouth(self) -> None:
        """Real-time pacing of the reply in 20 ms frames on an absolute schedule."""
        buf = np.zeros(0, dtype=np.int16)
        while True:
            if not len(buf):
                if self._speaking and self._out.empty():
                    self._speaking = False
                    await self._event({"type": "audio.stop"})
                buf = await self._out.get()
                start, n = time.perf_counter_ns(), 0
                if not self._speaking:
                    self._speaking = True
                    await self._event({"type": "audio.start"})
            while len(buf) or not self._out.empty():
                if len(buf) < FRAME_SAMPLES and not self._out.empty():
                    buf = np.concatenate([buf, self._out.get_nowait()])
                if not self._speaking:  # interrupted: the rest is dropped
                    buf = np.zeros(0, dtype=np.int16)
                    break
                frame, buf = buf[:FRAME_SAMPLES], buf[FRAME_SAMPLES:]
                await sleep_until(start + n * FRAME_NS)
                await self._send_audio(frame.tobytes())
                n += 1

    async def _event(self, event: dict) -> None:
        await self._send_event(event)
