"""How the reference agent produces a reply: LLM tokens → clauses → TTS audio, streaming or batch,
and speculative generation started on a stable partial transcript before the turn is confirmed."""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import numpy as np

from harness.agent.providers.base import TTS

CLAUSE_END = re.compile(r"(?<=[.!?;:,])\s+")
FIRST_CHUNK_WORDS = 3
"""The first chunk of a reply goes to TTS after this many words even without punctuation:
synthesis time grows with the text, and the first audio is what the caller waits for."""


def split_clauses(pending: str, first: bool, first_words: int = FIRST_CHUNK_WORDS) -> tuple[list[str], str]:
    """Complete clauses in `pending`, and the rest still waiting for its punctuation."""
    *done, rest = CLAUSE_END.split(pending)
    if first and not done:
        words = rest.split(" ")
        if len(words) > first_words and words[-1] != "":  # a word after the first chunk's last has begun
            done, rest = [" ".join(words[:first_words])], " ".join(words[first_words:])
    return done, rest

RUN_OUT_MS = 400
"""When what is playing will run out this soon, the words generated so far go to TTS without
waiting for their clause's punctuation (a pause inside the answer is dead air to the caller)."""


LEAD_KEEP_SAMPLES = 160
"""Silence kept before a reply's first word (10 ms); TTS voices pad a sentence with up to 100 ms
or more, which the caller would otherwise wait through."""
QUIET = 0.01 * 32768


def trim_lead(pcm16: np.ndarray, keep: int = LEAD_KEEP_SAMPLES) -> np.ndarray:
    """`pcm16` from `keep` samples before its first sample above -40 dBFS (empty if all quiet)."""
    loud = np.flatnonzero(np.abs(pcm16.astype(np.int32)) > QUIET)
    return pcm16[max(0, int(loud[0]) - keep):] if loud.size else pcm16[:0]


def flush_words(pending: str) -> tuple[list[str], str]:
    """The complete words of `pending` (two at least) as a chunk, and the word still arriving."""
    words = pending.split(" ")
    whole, rest = words[:-1], words[-1]
    if len([w for w in whole if w]) < 2:
        return [], pending
    return [" ".join(whole)], rest

Emit = Callable[[dict], Awaitable[None]]


def normalize(text: str) -> str:
    """Transcript text as compared for speculation: lower case words only."""
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))


def elapsed_ms(since_ns: int) -> float:
    return round((time.perf_counter_ns() - since_ns) / 1e6, 3)


class Gate:
    """Where a reply's audio and stage events go. A speculative reply's gate is closed: it holds
    both until the turn is confirmed. Stage durations are measured from the moment the gate
    opened (the final transcript), so work done ahead of it counts as zero on the critical path."""

    def __init__(self, play: Callable[[np.ndarray], None], emit: Emit, opened_ns: int | None = None):
        self._play, self._emit, self.opened_ns = play, emit, opened_ns
        self.playing_until_ns = 0
        """When the audio let through so far will have played out (if the mouth starts it at once)."""
        self._audio: list[np.ndarray] = []
        self._events: list[tuple[dict, int]] = []
        self._token_ns: int | None = None
        self._extra: dict = {}

    def audio(self, chunk: np.ndarray) -> None:
        if self.opened_ns is None:
            self._audio.append(chunk)
        else:
            self._release(chunk)

    def _release(self, chunk: np.ndarray) -> None:
        now = time.perf_counter_ns()
        self.playing_until_ns = max(self.playing_until_ns, now) + int(len(chunk) * 1e9 / 16000)
        self._play(chunk)

    async def event(self, ev: dict, at_ns: int) -> None:
        if self.opened_ns is None:
            self._events.append((ev, at_ns))
        else:
            await self._emit(self._stamp(ev, at_ns))

    @property
    def held_audio_ms(self) -> float:
        """Audio synthesised behind the closed gate (what a discarded speculation throws away)."""
        return round(sum(len(c) for c in self._audio) * 1000 / 16000, 1)

    async def notice(self, ev: dict) -> None:
        """An event that says what happens behind the gate: sent at once, never held."""
        await self._emit(ev)

    async def open(self, at_ns: int, **extra) -> None:
        """The turn is confirmed: release what was held, then pass everything straight on."""
        self.opened_ns, self._extra = at_ns, extra
        for chunk in self._audio:
            self._release(chunk)
        self._audio = []
        held, self._events = self._events, []
        for ev, at in held:
            await self._emit(self._stamp(ev, at))

    def _stamp(self, ev: dict, at: int) -> dict:
        opened = self.opened_ns
        if ev["type"] == "llm.first_token":
            self._token_ns = at
            start = opened
        elif ev["type"] == "tts.first_audio":  # from the first token: waiting for a clause + synthesis
            start = max(opened, self._token_ns or opened)
        else:
            start = opened
        return {**ev, **self._extra, "duration_ms": round(max(0, at - start) / 1e6, 3)}


class Responder:
    """Turns LLM deltas into audio chunks through a gate, reporting each stage as it happens.

    streaming: every clause goes to TTS as soon as its punctuation arrives, and every TTS chunk
    to the mouth as soon as it exists. batch: the whole answer, then all of its audio, then play;
    there the LLM stage ends with the whole answer and the TTS stage with all of the audio.
    """

    def __init__(self, tts: TTS, tts_pool: concurrent.futures.Executor, gate: Gate, batch: bool = False,
                 on_usage: Callable[[dict], None] | None = None, prompt_chars: int = 0,
                 first_words: int = FIRST_CHUNK_WORDS):
        self.tts, self._pool, self.gate, self.batch = tts, tts_pool, gate, batch
        self.first_words = first_words
        self._on_usage, self._prompt_chars = on_usage, prompt_chars
        self._tts_chars = 0

    async def respond(self, deltas: AsyncIterator[str]) -> str:
        """Speak the reply; returns its text. Cancel the task running this to stop at once.
        However it ends (spoken, interrupted, a discarded speculation), what it consumed goes
        to `on_usage`: prompt and generated characters, characters synthesised."""
        reply: list[str] = []
        try:
            return await self._respond(deltas, reply)
        finally:
            if self._on_usage is not None:
                self._on_usage({"llm_prompt_chars": self._prompt_chars, "llm_reply_chars": sum(map(len, reply)),
                                "tts_chars": self._tts_chars, "speculative": self.gate.opened_ns is None})

    async def _respond(self, deltas: AsyncIterator[str], reply: list[str]) -> str:
        clauses: asyncio.Queue[str | None] = asyncio.Queue()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._speak(clauses))
            pending, first, chunked = "", True, 0
            async for delta in deltas:
                if first and not self.batch:
                    first = False
                    await self.gate.event({"type": "llm.first_token"}, time.perf_counter_ns())
                reply.append(delta)
                if self.batch:
                    continue
                pending += delta
                done, pending = split_clauses(pending, first=chunked == 0, first_words=self.first_words)
                if not done and chunked and clauses.empty() and self._running_out():
                    done, pending = flush_words(pending)
                for clause in done:
                    clauses.put_nowait(clause)
                    chunked += 1
            text = "".join(reply)
            if self.batch:  # batch: the LLM stage ends with the whole answer
                await self.gate.event({"type": "llm.first_token", "whole_answer": True}, time.perf_counter_ns())
                clauses.put_nowait(text)
            elif pending.strip():
                clauses.put_nowait(pending)
            clauses.put_nowait(None)
        return text

    def _running_out(self) -> bool:
        """The audio let through will have played out within RUN_OUT_MS: waiting for the
        clause's punctuation would leave the caller a silence."""
        until = self.gate.playing_until_ns
        return bool(until) and until - time.perf_counter_ns() < RUN_OUT_MS * 1_000_000

    async def _speak(self, clauses: asyncio.Queue) -> None:
        first = True
        held: list[np.ndarray] = []
        while (clause := await clauses.get()) is not None:
            if not clause.strip():
                continue
            self._tts_chars += len(clause)
            t0 = time.perf_counter_ns()
            speculative = first and self.gate.opened_ns is None
            if speculative:  # synthesis of the first clause ahead of the confirmed turn
                await self.gate.notice({"type": "tts.speculation_started", "text": clause})
            async for chunk in self.tts.stream(clause, self._pool):
                if self.batch:
                    held.append(chunk)
                    continue
                if first:
                    chunk = trim_lead(chunk)
                    if not len(chunk):  # silence before the first word: nothing to wait for
                        continue
                    first = False
                    if speculative and self.gate.opened_ns is None:
                        await self.gate.notice({"type": "tts.speculation_ready", "synth_ms": elapsed_ms(t0)})
                    await self.gate.event({"type": "tts.first_audio", "synth_ms": elapsed_ms(t0)},
                                          time.perf_counter_ns())
                self.gate.audio(chunk)
        if self.batch and held:  # batch: the first audio is the whole answer's audio
            await self.gate.event({"type": "tts.first_audio"}, time.perf_counter_ns())
            for c in held:
                self.gate.audio(c)


class Speculation:
    """A reply begun on a partial transcript before the turn is confirmed: its LLM tokens and
    TTS audio wait behind a closed gate, released if the final transcript has the same words."""

    def __init__(self, text: str, responder: Responder, deltas: AsyncIterator[str]):
        self.text, self.responder = text, responder
        self.started_ns = time.perf_counter_ns()
        self.task = asyncio.get_running_loop().create_task(responder.respond(deltas))

    def matches(self, final: str) -> bool:
        return normalize(final) == normalize(self.text)

    def cancel(self) -> None:
        self.task.cancel()

    async def confirm(self, at_ns: int) -> None:
        await self.responder.gate.open(at_ns, speculative=True, head_start_ms=round((at_ns - self.started_ns) / 1e6, 3))
