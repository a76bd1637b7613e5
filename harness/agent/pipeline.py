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

from harness.agent import tools
from harness.agent.providers.base import LLM, STT, TTS, VAD, TurnDetector
from harness.agent.providers.registry import STAGES
from harness.agent.respond import Emit, Gate, Responder, Speculation, elapsed_ms, trim_lead
from harness.agent.tools import ToolConfig, ToolFailed
from harness.audio.frames import FRAME_NS, FRAME_SAMPLES, SAMPLE_RATE
from harness.clock import sleep_until

HISTORY_MAX, HISTORY_KEEP = 16, 6
"""Messages of the conversation the LLM sees: the history grows (so a local model's prompt cache
covers all but the newest words) until HISTORY_MAX, then drops to the last HISTORY_KEEP."""
BRIDGE_LEAD_S = 0.15
"""A bridging line is queued this long before what was already said runs out, so it follows
without a gap (the mouth concatenates queued audio)."""
BACKCHANNEL_WORDS = {"yeah", "yes", "yep", "okay", "ok", "right", "sure", "uh", "huh", "mm", "hmm", "mhm"}


@dataclass(frozen=True)
class PipelineConfig:
    """How the reference agent takes turns and produces replies."""

    mode: Literal["streaming", "batch"] = "streaming"
    """batch = the classic baseline: transcribe the whole utterance at the end of the turn, wait
    for the whole LLM answer, synthesise all of it, then play."""
    speculative: bool = True
    """Start the LLM on a stable partial transcript during the end-of-turn silence (streaming only)."""
    speculate_after_ms: float = 60.0
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
    first_chunk_words: int = 3
    """The reply's first chunk goes to TTS after this many words even without punctuation."""
    tools: ToolConfig = ToolConfig()
    """Tool calls to a simulated backend on turns that need a lookup, masked by fillers."""


@dataclass
class Providers:
    vad: VAD
    stt: STT
    llm: LLM
    tts: TTS
    turn: TurnDetector

    def __post_init__(self) -> None:
        self.filler_audio: dict[str, np.ndarray] = {}
        """Fillers synthesised once per model set (a filler must play at once, not after TTS)."""

    @property
    def labels(self) -> dict:
        return {k: {"name": getattr(self, k).name, "simulated": getattr(self, k).simulated} for k in STAGES}


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
                 send_audio: Callable[[bytes], Awaitable[None]], send_event: Emit, call_index: int = 0):
        self.p, self.cfg = providers, cfg
        self._send_audio, self._event = send_audio, send_event
        self._batch = cfg.mode == "batch"
        self._stt_blocking = providers.stt.blocking
        self._frames: asyncio.Queue[tuple[int, np.ndarray]] = asyncio.Queue()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="asr")
        self._out: asyncio.Queue[tuple[int, np.ndarray, dict | None]] = asyncio.Queue()
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
        self._backend = tools.SimulatedBackend(cfg.tools, call_index) if cfg.tools.enabled else None
        self._profile: dict | None = None
        self._background: set[asyncio.Task] = set()

    # -- input -------------------------------------------------------------------------------

    def on_audio(self, pcm: bytes, arrival_ns: int) -> None:
        self._frames.put_nowait((arrival_ns, np.frombuffer(pcm, dtype="<i2").copy()))

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        mouth = loop.create_task(self._mouth())
        if self._backend is not None:
            self._spawn(self._prepare_tools())
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
            for task in self._background:
                task.cancel()
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
              and self._tool_for(sp.partial) is None and silence_ms >= self.cfg.speculate_after_ms
              and (now - sp.partial_since_ns) / 1e6 >= self.cfg.speculate_after_ms):
            messages = self._context(self._history + [{"role": "user", "content": sp.partial}])
            self._spec = Speculation(sp.partial, self._responder(Gate(self._content_play(), self._event), messages),
                                     self.p.llm.stream(messages))
            await self._event({"type": "llm.speculation_started", "text": sp.partial})

    async def _end_of_turn(self, sp: _Speech) -> None:
        loop = asyncio.get_running_loop()
        self._speech = None
        await self._event({"type": "vad.stop"})
        score = getattr(self.p.turn, "last_score", None)
        audio = getattr(self.p.turn, "last_audio", None)
        turn_end = {"type": "turn.end", "policy": self.p.turn.name,
                    **({"completeness": round(score, 3)} if score is not None else {}),
                    **({"audio_completeness": round(audio, 3)} if audio is not None else {})}
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
        tool = self._tool_for(text)
        if spec is not None and (tool is not None or not spec.matches(text)):
            await self._discard(spec, final=text)
            spec = None
        self._remember({"role": "user", "content": text})
        t_final = time.perf_counter_ns()
        if spec is not None:
            await spec.confirm(t_final)
            work = spec.task
        elif tool is not None:
            work = self._tool_reply(list(self._history), tool, t_final)
        else:
            messages = self._context(list(self._history))
            work = self._responder(Gate(self._content_play(), self._event, opened_ns=t_final), messages).respond(
                self.p.llm.stream(messages))
        self._response = loop.create_task(self._reply(work, spec))

    # -- tools -------------------------------------------------------------------------------

    def _spawn(self, coro: Awaitable) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _tool_for(self, text: str) -> str | None:
        """The backend call this turn needs (None: none, or its answer is already at hand)."""
        if self._backend is None:
            return None
        tool = tools.route(text)
        if tool == tools.PREFETCHED and self._profile is not None:
            return None
        return tool

    def _context(self, messages: list[dict]) -> list[dict]:
        """What the LLM sees: the prefetched profile, when there is one, with the caller's last words."""
        if self._profile is None or not messages:
            return messages
        return tools.with_result(messages, tools.PREFETCHED, self._profile, None)

    async def _prepare_tools(self) -> None:
        """At call start: the fillers' audio (once per model set) and the prefetch."""
        cfg = self.cfg.tools
        if cfg.prefetch:
            self._spawn(self._prefetch())
        if cfg.fillers != "none" and not self.p.filler_audio:
            for line in (tools.ACK, *tools.BRIDGES):
                chunks = [c async for c in self.p.tts.stream(line, self._tts_pool)]
                self.p.filler_audio[line] = trim_lead(np.concatenate(chunks)) if chunks else np.zeros(0, np.int16)

    async def _prefetch(self) -> None:
        t0 = time.perf_counter_ns()
        await self._event({"type": "tool.started", "name": tools.PREFETCHED, "prefetch": True})
        try:
            self._profile = await self._backend.call(tools.PREFETCHED)
            error = None
        except ToolFailed as e:
            error = str(e)
        await self._event({"type": "tool.finished", "name": tools.PREFETCHED, "prefetch": True,
                           "duration_ms": elapsed_ms(t0), **({"error": error} if error else {})})

    def _filler(self, line: str, kind: str) -> float:
        """Queue a filler line at once; returns its length in seconds (0: none synthesised yet)."""
        audio = self.p.filler_audio.get(line)
        if audio is None or not len(audio):
            return 0.0
        self._play(audio, {"type": "response.filler", "kind": kind, "text": line})
        return len(audio) / SAMPLE_RATE

    async def _tool_reply(self, messages: list[dict], tool: str, t_final: int) -> str:
        """A reply that needs the backend: filler at once, then (mode ack+bridge) a bridging line
        whenever what has been said is about to run out before the answer's first audio exists
        (the call, then the LLM and TTS on its result), then the answer."""
        cfg = self.cfg.tools
        await self._event({"type": "tool.started", "name": tool})
        audible = asyncio.Event()  # the answer's first audio is queued
        answer = asyncio.get_running_loop().create_task(self._answer(messages, tool, t_final, audible))
        try:
            said_s = self._filler(tools.ACK, "ack") if cfg.fillers != "none" else 0.0
            bridges = iter(tools.BRIDGES if cfg.fillers == "ack+bridge" and said_s else ())
            covered_ns = time.perf_counter_ns() + int(said_s * 1e9)
            ready = asyncio.get_running_loop().create_task(audible.wait())
            try:
                while not audible.is_set() and not answer.done():
                    wait_s = max(0.0, (covered_ns - time.perf_counter_ns()) / 1e9 - BRIDGE_LEAD_S)
                    await asyncio.wait({answer, ready}, timeout=wait_s, return_when=asyncio.FIRST_COMPLETED)
                    if audible.is_set() or answer.done():
                        break
                    line = next(bridges, None)
                    if line is None:
                        break
                    covered_ns = max(covered_ns, time.perf_counter_ns()) + int(self._filler(line, "bridge") * 1e9)
            finally:
                ready.cancel()
            return await answer
        finally:
            answer.cancel()

    async def _answer(self, messages: list[dict], tool: str, t_final: int, audible: asyncio.Event) -> str:
        """The backend call, then the LLM's answer with its result (or its error)."""
        try:
            result, error = await self._backend.call(tool), None
        except ToolFailed as e:
            result, error = None, str(e)
        await self._event({"type": "tool.finished", "name": tool, "duration_ms": elapsed_ms(t_final),
                           **({"error": error} if error else {})})
        messages = self._context(tools.with_result(messages, tool, result, error))
        gate = Gate(self._content_play(audible.set), self._event, opened_ns=time.perf_counter_ns())
        return await self._responder(gate, messages).respond(self.p.llm.stream(messages))

    def _remember(self, message: dict) -> None:
        self._history.append(message)
        if len(self._history) > HISTORY_MAX:
            self._history = self._history[-HISTORY_KEEP:]

    def _responder(self, gate: Gate, messages: list[dict]) -> Responder:
        llm = self.p.llm
        prompt = (len(llm.system_prompt) + sum(len(m["content"]) for m in messages)) * llm.fanout
        return Responder(self.p.tts, self._tts_pool, gate, batch=self._batch, on_usage=self._usage,
                         prompt_chars=prompt, first_words=self.cfg.first_chunk_words)

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
            await self._discard(spec)

    async def _discard(self, spec: Speculation, **why: str) -> None:
        """Throw a speculative reply away, unheard; say what it had made (held audio included)."""
        spec.cancel()
        held_ms = spec.responder.gate.held_audio_ms
        await self._event({"type": "llm.speculation_discarded", "text": spec.text, **why})
        if held_ms:
            await self._event({"type": "tts.speculation_discarded", "audio_ms": held_ms})

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

    def _play(self, chunk: np.ndarray, mark: dict | None = None) -> None:
        """Queue reply audio for the mouth, tagged with the current epoch; `mark` is an event the
        mouth sends just before the frame that holds this chunk's first sample."""
        self._out.put_nowait((self._epoch, chunk, mark))

    def _content_play(self, on_first: Callable[[], None] | None = None) -> Callable[[np.ndarray], None]:
        """Play for one reply's content: its first chunk carries `response.content_start`."""
        first = True

        def play(chunk: np.ndarray) -> None:
            nonlocal first
            self._play(chunk, {"type": "response.content_start"} if first else None)
            if first and on_first is not None:
                on_first()
            first = False
        return play

    async def _mouth(self) -> None:
        """Real-time pacing of the reply in 20 ms frames on an absolute schedule."""
        while True:
            epoch, buf, mark = await self._out.get()
            if epoch != self._epoch:
                continue
            marks = [(0, mark)] if mark is not None else []  # (sample offset in buf, event)
            if not self._speaking:
                self._speaking = True
                await self._event({"type": "audio.start"})
            start, n = time.perf_counter_ns(), 0
            while epoch == self._epoch:
                if len(buf) < FRAME_SAMPLES and not self._out.empty():
                    e, more, mark = self._out.get_nowait()
                    if e == epoch:
                        if mark is not None:
                            marks.append((len(buf), mark))
                        buf = np.concatenate([buf, more])
                    continue
                if not len(buf):
                    break
                frame, buf = buf[:FRAME_SAMPLES], buf[FRAME_SAMPLES:]
                await sleep_until(start + n * FRAME_NS)
                if epoch != self._epoch:  # interrupted while waiting: not one more frame
                    break
                due = [{**ev, "offset_ms": at * 1000 / SAMPLE_RATE} if at else ev
                       for at, ev in marks if at < FRAME_SAMPLES]
                marks = [(at - FRAME_SAMPLES, ev) for at, ev in marks if at >= FRAME_SAMPLES]
                for ev in due:
                    await self._event(ev)
                await self._send_audio(frame.tobytes())
                n += 1
            if epoch == self._epoch and self._speaking and self._out.empty():
                self._speaking = False
                await self._event({"type": "audio.stop"})
