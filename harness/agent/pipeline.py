"""The reference agent's pipeline for one call.

caller audio → VAD (Silero) → turn detection (`vad`: silence; `semantic`: acoustic and lexical
cues) → STT (streaming partials; final at end of turn) → LLM (streaming tokens, optionally
started speculatively on a stable partial) → TTS clause by clause → audio out at real-time pace.
Speech over the agent cancels LLM and TTS and stops the audio at once (barge-in), unless it is
short and lexically a backchannel ("yeah", "okay", "uh huh"). Every stage reports its own
duration as a JSON event on the same connection, so turnbench can split latency into stages.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from harness.agent.providers.base import LLM, STT, TTS, VAD, TurnDetector
from harness.agent.respond import Emit, Gate, Responder, Speculation, elapsed_ms
from harness.audio.frames import FRAME_NS, FRAME_SAMPLES
from harness.clock import sleep_until

HISTORY_MAX, HISTORY_KEEP = 16, 6
"""Messages of the conversation the LLM sees: the history grows (so a local model's prompt cache
covers all but the newest words) until HISTORY_MAX, then drops to the last HISTORY_KEEP."""
BACKCHANNEL_WORDS = {"yeah", "yes", "yep", "okay", "ok", "right", "sure", "uh", "huh", "mm", "hmm", "mhm"}


@dataclass(frozen=True)
class PipelineConfig:
    """How the reference agent takes turns and produces replies."""

    mode: Literal["streaming", "batch"] = "streaming"
    """batch = the classic baseline: transcribe the whole utterance at the end of the turn, wait
    for the whole LLM answer, synthesise all of it, then play."""
    speculative: bool = True
    """Start the LLM on a stable partial transcript during the end-of-turn silence (streaming only)."""
    speculate_after_ms: float = 150.0
    """A speculative generation starts once the caller has been silent, and the partial
    transcript unchanged, for this long."""
    vad_threshold: float = 0.5
    barge_in_ms: float = 220.0
    """Speech over the agent for this long with a content word in its partial transcript
    ("wait", "stop", "cancel"; not "yeah", "uh", "i") interrupts it."""
    backchannel_max_ms: float = 450.0
    """Speech over the agent for this long that is not lexically a backchannel interrupts it
    (backchannels last 0.2–0.55 s; the first ~300 ms of a partial transcript are unreliable)."""
    interrupt_max_ms: float = 1000.0
    """Speech over the agent for this long interrupts it whatever the words."""
    preroll_ms: float = 200.0


@dataclass
class Providers:
    vad: VAD
    stt: STT
    llm: LLM
    tts: TTS
    turn: TurnDetector

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
    partial_since_ns: int = 0


NON_CONTENT_WORDS = BACKCHANNEL_WORDS | {
    "a", "an", "the", "i", "i'm", "it", "is", "to", "and", "but", "so", "oh", "ah", "um", "er", "well", "by", "you"}
"""Words that say nothing by themselves: a streaming recogniser's first guesses at a short
"uh huh" or "right" are often these ("i", "the", "by")."""


def has_content(text: str) -> bool:
    """At least one word that is not a backchannel, a filler or a bare function word."""
    return any(w not in NON_CONTENT_WORDS for w in re.findall(r"[a-z']+", text.lower()))


def is_backchannel(text: str) -> bool:
    """Lexically a backchannel: only words like "yeah", "okay", "uh huh", "mm hmm"."""
    words = re.findall(r"[a-z]+", text.lower())
    return bool(words) and all(w in BACKCHANNEL_WORDS for w in words)


class ReferenceSession:
    """One call's pipeline. Feed frames with `on_audio`; run `run()` for as long as the call lasts."""

    def __init__(self, providers: Providers, cfg: PipelineConfig,
                 send_audio: Callable[[bytes], Awaitable[None]], send_event: Emit):
        self.p, self.cfg = providers, cfg
        self._send_audio, self._event = send_audio, send_event
        self._batch = cfg.mode == "batch"
        self._stt_blocking = providers.stt.blocking
        self._frames: asyncio.Queue[tuple[int, np.ndarray]] = asyncio.Queue()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="asr")
        self._out: asyncio.Queue[tuple[int, np.ndarray]] = asyncio.Queue()
        self._epoch = 0
        self._tts_pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="tts")
        self._speech: _Speech | None = None
        self._utterance: list[np.ndarray] = []
        self._preroll: list[np.ndarray] = []
        self._vad_buf = np.zeros(0, dtype=np.float32)
        self._response: asyncio.Task | None = None
        self._spec: Speculation | None = None
        self._speaking = False
        self._history: list[dict] = []
        self._pending_events: set[asyncio.Task] = set()
        self._voiced = False
        self._asr_partial = ""
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
                voiced, partial = await loop.run_in_executor(self._pool, self._listen, frame)
                if not self._stt_blocking and self._speech is not None and not self._batch:
                    partial = await self.p.stt.afeed(frame)  # a streaming service: on the loop
                    self._asr_partial = partial or self._asr_partial
                await self._after_frame(arrival, frame, voiced, partial)
        finally:
            mouth.cancel()
            if self._spec is not None:
                self._spec.cancel()
            if self._response is not None:
                self._response.cancel()
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._tts_pool.shutdown(wait=False, cancel_futures=True)

    def _listen(self, frame: np.ndarray) -> tuple[bool, str | None]:
        """In the ASR thread: VAD over full windows; STT and turn cues on the frame when in speech."""
        self._vad_buf = np.concatenate([self._vad_buf, frame.astype(np.float32) / 32768.0])
        w = self.p.vad.window_samples
        voiced = None
        while len(self._vad_buf) >= w:
            prob = self.p.vad.speech_prob(self._vad_buf[:w])
            self._vad_buf = self._vad_buf[w:]
            voiced = bool(voiced) or prob >= self.cfg.vad_threshold
        if voiced is not None:  # frames are 20 ms, windows 32 ms: a frame without a window keeps the last verdict
            self._voiced = voiced
        partial = None
        if self._speech is not None:
            if self._batch:
                self._utterance.append(frame)
            elif self._stt_blocking:
                partial = self.p.stt.feed(frame)
                self._asr_partial = partial or self._asr_partial
            self.p.turn.observe(frame, self._voiced, self._asr_partial)
        return self._voiced, partial

    def _begin_utterance(self, pre: list[np.ndarray]) -> None:
        """In the ASR thread: a new utterance, with the audio just before the VAD fired."""
        self.p.turn.reset()
        self._asr_partial = ""
        for f in pre:
            self.p.turn.observe(f, True)
        if self._batch:
            self._utterance = list(pre)
            return
        if self._stt_blocking:
            self.p.stt.start()
            for f in pre:
                self.p.stt.feed(f)

    def _final_transcript(self) -> str:
        """In the ASR thread: the final transcript (batch: the whole utterance recognised now)."""
        if self._batch:
            self.p.stt.start()
            for f in self._utterance:
                self.p.stt.feed(f)
            self._utterance = []
        return self.p.stt.finish()

    async def _final_transcript_streaming(self) -> str:
        """The final transcript from a streaming (non-blocking) STT, on the loop."""
        if self._batch:
            await self.p.stt.astart()
            for f in self._utterance:
                await self.p.stt.afeed(f)
            self._utterance = []
        return await self.p.stt.afinish()

    async def _after_frame(self, now: int, frame: np.ndarray, voiced: bool, partial: str | None) -> None:
        loop = asyncio.get_running_loop()
        if self._speech is None:
            self._preroll = (self._preroll + [frame])[-int(self.cfg.preroll_ms / 20):]
            if not voiced:
                return
            talking = self._speaking or self._response is not None
            self._speech = _Speech(now, now, talking, partial_since_ns=now)
            await loop.run_in_executor(self._pool, self._begin_utterance, self._preroll)
            if not self._stt_blocking and not self._batch:
                await self.p.stt.astart()
                for f in self._preroll:
                    await self.p.stt.afeed(f)
            await self._event({"type": "vad.start", "over_agent": talking})
            return
        sp = self._speech
        if partial and partial != sp.partial:
            sp.partial, sp.partial_since_ns = partial, now
            if self._spec is not None and not self._spec.matches(partial):
                await self._drop_speculation()
        if voiced:
            sp.last_voice_ns = now
            dur_ms = (now - sp.started_ns) / 1e6
            if sp.over_agent and (dur_ms >= self.cfg.interrupt_max_ms
                                  or (dur_ms >= self.cfg.backchannel_max_ms and not is_backchannel(sp.partial))
                                  or (dur_ms >= self.cfg.barge_in_ms and has_content(sp.partial))):
                await self._interrupt(text=sp.partial, speech_ms=round(dur_ms, 1))
                sp.over_agent = False
            return
        silence_ms = (now - sp.last_voice_ns) / 1e6
        if silence_ms >= self.p.turn.silence_needed_ms(sp.partial):
            await self._end_of_turn(sp)
        elif (self.cfg.speculative and not self._batch and self._spec is None and sp.partial and not sp.over_agent
              and silence_ms >= self.cfg.speculate_after_ms
              and (now - sp.partial_since_ns) / 1e6 >= self.cfg.speculate_after_ms):
            messages = self._history + [{"role": "user", "content": sp.partial}]
            self._spec = Speculation(sp.partial, self._responder(Gate(self._play, self._event), messages),
                                     self.p.llm.stream(messages))
            await self._event({"type": "llm.speculation_started", "text": sp.partial})

    async def _end_of_turn(self, sp: _Speech) -> None:
        loop = asyncio.get_running_loop()
        self._speech = None
        await self._event({"type": "vad.stop"})
        score = getattr(self.p.turn, "last_score", None)
        turn_end = {"type": "turn.end", "policy": self.p.turn.name,
                    **({"completeness": round(score, 3)} if score is not None else {})}
        if not sp.over_agent:  # decided now: the final transcript is the next stage, not part of this one
            await self._event(turn_end)
        t0 = time.perf_counter_ns()
        text = (await loop.run_in_executor(self._pool, self._final_transcript) if self._stt_blocking
                else await self._final_transcript_streaming())
        if sp.over_agent and not has_content(text):  # a short "yeah" / "uh huh" over the agent: not a turn
            await self._drop_speculation()
            await self._event({"type": "backchannel.ignored", "text": text})
            return
        if sp.over_agent:  # over the agent, only the transcript tells a turn from a backchannel
            await self._event(turn_end)
        await self._event({"type": "stt.final", "text": text, "duration_ms": elapsed_ms(t0)})
        if not text.strip():
            await self._drop_speculation()
            return
        await self._interrupt()
        self.turns += 1
        spec, self._spec = self._spec, None
        if spec is not None and not spec.matches(text):
            spec.cancel()
            await self._event({"type": "llm.speculation_discarded", "text": spec.text, "final": text})
            spec = None
        self._remember({"role": "user", "content": text})
        t_final = time.perf_counter_ns()
        if spec is not None:
            await spec.confirm(t_final)
            work = spec.task
        else:
            messages = list(self._history)
            work = self._responder(Gate(self._play, self._event, opened_ns=t_final), messages).respond(
                self.p.llm.stream(messages))
        self._response = loop.create_task(self._reply(work, spec))

    def _remember(self, message: dict) -> None:
        self._history.append(message)
        if len(self._history) > HISTORY_MAX:
            self._history = self._history[-HISTORY_KEEP:]

    def _responder(self, gate: Gate, messages: list[dict]) -> Responder:
        llm = self.p.llm
        prompt = (len(llm.system_prompt) + sum(len(m["content"]) for m in messages)) * llm.fanout
        return Responder(self.p.tts, self._tts_pool, gate, batch=self._batch, on_usage=self._usage,
                         prompt_chars=prompt)

    def _usage(self, usage: dict) -> None:
        """What a reply consumed (billed by a metered provider whether or not it was heard): a
        `reply.usage` event, sent from a task of its own (a cancelled reply reports it too)."""
        task = asyncio.get_running_loop().create_task(self._event({"type": "reply.usage", **usage}))
        self._pending_events.add(task)
        task.add_done_callback(self._pending_events.discard)

    async def _drop_speculation(self) -> None:
        """The transcript moved on: the speculative generation is of no use."""
        spec, self._spec = self._spec, None
        if spec is not None:
            spec.cancel()
            await self._event({"type": "llm.speculation_discarded", "text": spec.text})

    # -- response ----------------------------------------------------------------------------

    async def _reply(self, work: Awaitable[str], spec: Speculation | None) -> None:
        """Await the reply being spoken (cancelled on barge-in) and remember what was said."""
        try:
            reply = await work
            self._remember({"role": "assistant", "content": reply})
        finally:
            if spec is not None:
                spec.cancel()
            if self._response is asyncio.current_task():
                self._response = None

    async def _interrupt(self, **why: object) -> None:
        """Barge-in: cancel generation and drop every sample not yet sent. `why` (the partial
        transcript and speech duration that decided it) goes into the `interrupted` event."""
        was = self._speaking or self._response is not None
        if self._response is not None:
            self._response.cancel()
            self._response = None
        self._epoch += 1  # the mouth drops whatever it holds of an older epoch
        while not self._out.empty():
            self._out.get_nowait()
        if was:
            self._speaking = False
            await self._event({"type": "interrupted", **why})

    # -- output ------------------------------------------------------------------------------

    def _play(self, chunk: np.ndarray) -> None:
        """Queue reply audio for the mouth, tagged with the current epoch."""
        self._out.put_nowait((self._epoch, chunk))

    async def _mouth(self) -> None:
        """Real-time pacing of the reply in 20 ms frames on an absolute schedule."""
        while True:
            epoch, buf = await self._out.get()
            if epoch != self._epoch:
                continue
            if not self._speaking:
                self._speaking = True
                await self._event({"type": "audio.start"})
            start, n = time.perf_counter_ns(), 0
            while epoch == self._epoch:
                if len(buf) < FRAME_SAMPLES and not self._out.empty():
                    e, more = self._out.get_nowait()
                    if e == epoch:
                        buf = np.concatenate([buf, more])
                    continue
                if not len(buf):
                    break
                frame, buf = buf[:FRAME_SAMPLES], buf[FRAME_SAMPLES:]
                await sleep_until(start + n * FRAME_NS)
                if epoch != self._epoch:  # interrupted while waiting: not one more frame
                    break
                await self._send_audio(frame.tobytes())
                n += 1
            if epoch == self._epoch and self._speaking and self._out.empty():
                self._speaking = False
                await self._event({"type": "audio.stop"})
