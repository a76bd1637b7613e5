"""The oracle agent: exactly programmed behaviour over ws-pcm, and a log of what it really did.

It is driven by the caller's `turnbench.hint` events (which stream samples hold speech), so it
can respond a programmed time after the end of speech regardless of pauses, interrupt pauses
on purpose, and stop a programmed time after a barge-in. Its ground truth is computed from
what it actually sent (send times, the same playout model, the exact samples of its voice),
never from signal detection, so the caller's measurements can be checked against it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from harness.agent.oracle_config import OracleConfig
from harness.agent.oracle_listen import SpeechFinder
from harness.agent.oracle_voice import recorded_reply, synth_reply_pcm, white_noise
from harness.audio.frames import FRAME_SAMPLES, SAMPLE_NS, SAMPLE_RATE, float_to_pcm16
from harness.audio.resample import resample
from harness.clock import sleep_until
from harness.playout import STALE_QUIET_MS

STOP_SILENCE_NS = 250_000_000
STALE_NS = int(STALE_QUIET_MS * 1e6)
NO_HINTS_WARN_S = 10
"""A caller that sent this much audio and no hint is not turnbench with --hints: say so."""

log = logging.getLogger(__name__)


@dataclass
class TurnTruth:
    """What the oracle did for one caller turn, on its own clock (arrival/send times)."""

    call_id: str
    turn: int
    kind: str
    start_arrival_ns: int | None = None
    eos_arrival_ns: int | None = None
    programmed_delay_ms: float | None = None
    latency_ms: float | None = None
    first_byte_ms: float | None = None
    false_interruption: bool | None = None
    barge_in_stop_ms: float | None = None
    programmed_stop_ms: float | None = None
    audible_at_start: bool = False
    backchannel_kept_talking: bool | None = None
    turn_detection_ms: float | None = None
    segments: list = field(default_factory=list)
    response_chunk_seq: int | None = None
    """Sequence number (among the oracle's binary messages) of the chunk holding the reply's onset."""
    stop_chunk_seq: int | None = None
    """Sequence number of the chunk holding the last audible sample before a barge-in stop."""
    stop_clear_index: int | None = None
    """Which of the oracle's `clear` messages ended that stop (Twilio), if one did."""
    dead_air_ms: float | None = None
    """The longest silence between the talk spurts of the reply, before the caller's next turn
    (0 when the reply is one spurt)."""
    dead_air_chunks: tuple[int, int] | None = None
    """Sequence numbers of the chunks holding that gap's edges: the last audible sample before it,
    the first after it."""
    first_content_ms: float | None = None
    """EOS → the first sample of the reply's content (reply_filler: the first word after the gap)."""
    content_chunk_seq: int | None = None
    """Sequence number of the chunk holding that sample."""
    silent_for_ms: float | None = None
    """When the agent was not audible at the turn's start: how long it had been quiet (None if it
    had not spoken yet). A caller on a delayed path still hears the agent that long after it
    stopped here, so its view of "the agent was talking when I started" is judged with this."""


@dataclass
class _Reply:
    turn: int
    audio: np.ndarray
    """PCM16 samples as sent (converted once per reply: per chunk, the conversion's own overhead
    was ~8 % of the oracle's CPU at 400 calls); emptied once played (only `runs` and `chunks`
    make the truth, and hundreds of calls' replies would otherwise pile up until hang-up)."""
    voice: np.ndarray | None
    """The reply without noise, where `runs` is not given."""
    first_send_ns: int
    stop_at_ns: int | None = None
    chunks: list[tuple[int, int, int, int, int]] = field(default_factory=list)
    """(send_ns, heard_start_ns, a, b, seq) per chunk: audio[a:b] went out at send_ns as message seq."""
    runs: tuple[np.ndarray, np.ndarray] | None = None
    """[start, end) sample indices of the voice's audible runs (computed once, at the end)."""
    content_at: int | None = None
    """Sample where the content begins, after a filler (reply_filler); None: no marks."""
    content_mark: tuple[int, int] | None = None
    """(message seq, sample offset in it) of the content's first sample, once sent."""


class OracleSession:
    """One connection's behaviour. Feed it frames and hints; it speaks through `send_audio`."""

    def __init__(self, cfg: OracleConfig, send_audio: Callable[[bytes], Awaitable[None]],
                 send_event: Callable[[dict], Awaitable[None]], call_id: str = "?",
                 clear: Callable[[], Awaitable[None]] | None = None,
                 packet_time: Callable[[int], int] | None = None):
        self.cfg, self.call_id = cfg, call_id
        self._send_audio, self._send_event = send_audio, send_event
        self._clear = clear
        self._packet_time = packet_time
        """For transports that re-frame audio: when the packet holding stream time t leaves."""
        self.clear_sends: list[int] = []
        """When the oracle told the caller to drop its queued audio (transports with `clear`)."""
        self._rng = np.random.default_rng(cfg.seed)
        self._turns: dict[int, dict] = {}
        self.truth: dict[int, TurnTruth] = {}
        self._triggers: list[tuple[int, int, str, int]] = []  # (sample, order, what, turn)
        self._received = 0
        self._replies: list[_Reply] = []
        self._reply_count = 0
        self._ears = SpeechFinder(cfg.listen_level_dbfs, cfg.listen_hangover_ms) if cfg.listen else None
        self._warned = False
        self.notes: list[str] = []
        """What the oracle noticed about the call (no hints while not listening)."""
        self._pending: _Reply | None = None
        self._current: _Reply | None = None
        self._heard_end_ns = 0
        self._audible_until_ns = 0
        self._stalled_for: int | None = None
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()
        self.frame_arrivals: list[int] = []
        """Arrival stamp of every binary message from the caller (one 20 ms frame each)."""
        self.chunk_sends: list[int] = []
        """Send stamp of every binary message to the caller, in order."""
        self.chunk_heard: list[int] = []
        """When the listener hears each of those messages start, by the playout model."""

    # -- input --------------------------------------------------------------------------------

    def on_hint(self, hint: dict) -> None:
        """A turn the caller is about to speak: its kind and speech segments in stream samples."""
        self.call_id = str(hint.get("call_id", self.call_id))
        idx, segs = int(hint["turn"]), [tuple(map(int, s)) for s in hint["segments"]]
        self._turns[idx] = {"kind": hint["kind"], "segments": segs}
        self.truth[idx] = TurnTruth(self.call_id, idx, hint["kind"], segments=[list(s) for s in segs])
        for j, (first, last) in enumerate(segs):
            self._triggers.append((first, 0, "speech", idx))
            if j + 1 < len(segs):
                self._triggers.append((last, 1, "pause", idx))
        self._triggers.append((segs[-1][1], 2, "eos", idx))
        self._triggers.sort()

    def on_audio(self, n_samples: int, arrival_ns: int, pcm16: np.ndarray | None = None) -> None:
        """Caller audio arrived; fire every trigger whose sample is now in.

        Called from the socket's read callback, so the triggers' work (drawing and synthesising a
        reply) runs just after, on its own: done here, it would delay the read callbacks, and so
        the arrival stamps, of every other call whose frame is waiting in the same loop pass."""
        self._received += n_samples
        self.frame_arrivals.append(arrival_ns)
        if self._ears is not None and pcm16 is not None:
            self._listen(pcm16, arrival_ns)
        elif not self._turns and not self._warned and self._received >= NO_HINTS_WARN_S * SAMPLE_RATE:
            self._warned = True
            log.warning("oracle: call %s sent %d s of audio and no turnbench.hint events: this oracle answers only "
                        "hinted callers (turnbench run --hints); serve it with --listen to answer any caller",
                        self.call_id, NO_HINTS_WARN_S)
            self.notes.append(f"no hints in the first {NO_HINTS_WARN_S} s of audio and --listen is off: silent")
        if self._triggers and self._triggers[0][0] < self._received:
            due = []
            while self._triggers and self._triggers[0][0] < self._received:
                sample, _, what, idx = self._triggers.pop(0)
                due.append((what, idx, sample, arrival_ns))
            asyncio.get_running_loop().call_soon(self._fire, due)

    def _listen(self, pcm16: np.ndarray, arrival_ns: int) -> None:
        """Listening mode: each speech edge the rule finds is a trigger, turns numbered in order."""
        due = []
        for edge in self._ears.feed(pcm16, arrival_ns):
            if edge.what == "speech":
                idx = len(self._turns)
                self.truth[idx] = TurnTruth(self.call_id, idx, "utterance")
                first = edge.sample
            else:
                idx = len(self._turns) - 1
                first = self._turns[idx]["segments"][0][0]
            self._turns[idx] = {"kind": "utterance", "segments": [(first, edge.sample)]}
            self.truth[idx].segments = [[first, edge.sample]]
            due.append((edge.what, idx, edge.sample, edge.arrival_ns))
        if due:
            asyncio.get_running_loop().call_soon(self._fire, due)

    def _fire(self, due: list[tuple[str, int, int, int]]) -> None:
        """Run each due trigger: (what, turn, stream sample, arrival of the frame holding it)."""
        for what, idx, sample, arrival_ns in due:
            getattr(self, f"_on_{what}")(idx, arrival_ns, sample)

    # -- behaviour ----------------------------------------------------------------------------

    def _talking(self, now_ns: int) -> bool:
        if self._current is not None or (self._pending is not None and self._pending.first_send_ns <= now_ns):
            return True
        # all sent, still playing at the caller: a transport with `clear` can still stop it
        return self._clear is not None and bool(self._replies) and self._heard_end_ns > now_ns

    def _on_speech(self, idx: int, at: int, sample: int) -> None:
        turn, truth = self._turns[idx], self.truth[idx]
        if truth.start_arrival_ns is None:
            truth.start_arrival_ns = at
        if turn["kind"] == "backchannel" and self.cfg.backchannel == "ignore":
            return
        if self._pending is not None and self._pending.first_send_ns > at:
            self._pending = None  # the caller spoke first: drop the reply not yet started
        if self._talking(at):
            target = self._current or self._pending or self._replies[-1]
            stop = at + int(self.cfg.barge_in_stop_ms * 1e6)
            first = target.stop_at_ns is None
            target.stop_at_ns = stop if first else min(target.stop_at_ns, stop)
            if first and self._clear is not None:
                self._spawn(self._clear_at(stop))
            if truth.programmed_stop_ms is None:
                truth.programmed_stop_ms = self.cfg.barge_in_stop_ms

    def _on_pause(self, idx: int, at: int, sample: int) -> None:
        x = self.cfg.false_interrupt_pause_ms
        segs = self._turns[idx]["segments"]
        gap_samples = next(b[0] - a[1] - 1 for a, b in zip(segs, segs[1:]) if a[1] == sample)
        if x is not None and gap_samples * 1000 / SAMPLE_RATE > x:
            self._schedule_reply(idx, at + int(x * 1e6))

    def _on_eos(self, idx: int, at: int, sample: int) -> None:
        turn, truth = self._turns[idx], self.truth[idx]
        truth.eos_arrival_ns = at
        if turn["kind"] == "backchannel" and self.cfg.backchannel == "ignore":
            return
        if turn["kind"] == "barge_in" and not self.cfg.answer_barge_in:
            return
        delay = self.cfg.delay.draw(self._rng)
        truth.programmed_delay_ms = round(delay, 3)
        if self.cfg.events:
            det = min(self.cfg.turn_detection_ms, delay)
            self._spawn(self._event_at(at + int(det * 1e6), {"type": "turn.end", "turn": idx}, idx))
        self._schedule_reply(idx, at + int(delay * 1e6))

    def _schedule_reply(self, idx: int, heard_at_ns: int) -> None:
        cfg = self.cfg
        level = cfg.level_dbfs if cfg.level_cycle_dbfs is None else cfg.level_cycle_dbfs[
            self._reply_count % len(cfg.level_cycle_dbfs)]
        self._reply_count += 1
        hiss = int(cfg.hiss_ms * SAMPLE_RATE / 1000) if cfg.hiss_dbfs is not None else 0
        lead = max(int(cfg.leading_silence_ms * SAMPLE_RATE / 1000), hiss)
        shaped = cfg.noise_dbfs is not None or hiss or cfg.fade_in_ms != "0" or cfg.agent_rate != SAMPLE_RATE
        gap = int(cfg.reply_gap.draw(self._rng) * SAMPLE_RATE / 1000) if cfg.reply_gap_ms != "0" else 0
        if cfg.voice == "recorded":
            spoken, (starts, ends) = recorded_reply(self._reply_count - 1, float(level))
            voice = np.concatenate([np.zeros(lead, np.float32), spoken])
            runs = (starts + lead, ends + lead)  # the recording's own speech, its first sample the reply's
            pcm = float_to_pcm16(voice)
        else:
            pcm, runs, voice = synth_reply_pcm(cfg.reply_ms, self._rng, level, lead, with_voice=shaped)
        content = None
        if gap:
            after = lead + int(cfg.reply_gap_after_ms * SAMPLE_RATE / 1000)
            k = int(np.searchsorted(runs[1], after))
            if cfg.reply_filler and k < len(runs[1]) - 1:
                content = int(runs[0][k + 1]) + gap  # the first word after the gap, where it lands
            pcm, voice, runs = with_gap(pcm, voice, runs, after, gap)
        if shaped:
            pcm = float_to_pcm16(self._shape(voice, lead, hiss))
        reply = _Reply(idx, pcm, None, heard_at_ns - int(lead * SAMPLE_NS), runs=runs, content_at=content)
        self._pending = reply
        self._replies.append(reply)
        self._wake.set()

    def _shape(self, voice: np.ndarray, lead: int, hiss: int) -> np.ndarray:
        """What real agents do to a reply's audio: a fade-in, hiss before the first word, a voice made
        at another rate and resampled, a noise floor. The truth stays the voice's own samples."""
        cfg = self.cfg
        fade = int(cfg.fade_in.draw(self._rng) * SAMPLE_RATE / 1000) if cfg.fade_in_ms != "0" else 0
        if fade:
            voice[lead : lead + fade] *= np.arange(1, fade + 1, dtype=np.float32) / fade
        if cfg.agent_rate != SAMPLE_RATE:  # as if made at agent_rate: band-limited there, back to 16 kHz
            voice = resample(resample(voice, SAMPLE_RATE, cfg.agent_rate), cfg.agent_rate, SAMPLE_RATE)[: len(voice)]
        if hiss:
            lo, hi = cfg.hiss_dbfs
            voice[lead - hiss : lead] += white_noise(hiss, float(self._rng.uniform(lo, hi)), self._rng)
        if cfg.noise_dbfs is not None:
            voice = voice + white_noise(len(voice), cfg.noise_dbfs, self._rng)
        return voice

    async def _event_at(self, t_ns: int, event: dict, idx: int) -> None:
        await sleep_until(t_ns)
        sent = time.perf_counter_ns()
        await self._send_event(event)
        truth = self.truth[idx]
        if truth.turn_detection_ms is None and truth.eos_arrival_ns is not None:
            truth.turn_detection_ms = round((sent - truth.eos_arrival_ns) / 1e6, 3)

    async def _clear_at(self, t_ns: int) -> None:
        """Stop on time even with audio queued at the caller, as phone agents do: `clear`."""
        await sleep_until(t_ns)
        now = time.perf_counter_ns()
        if self._heard_end_ns > now:
            self.clear_sends.append(now)
            self._heard_end_ns = now
            self._audible_until_ns = min(self._audible_until_ns, now)
            await self._clear()

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- output -------------------------------------------------------------------------------

    async def run_mouth(self) -> None:
        """The single task that owns outgoing audio: replies on schedule, else idle noise."""
        while True:
            r = self._pending
            now = time.perf_counter_ns()
            if r is not None and now >= r.first_send_ns:
                self._pending, self._current = None, r
                await self._play(r)
                self._current = None
            elif self.cfg.idle_noise and self.cfg.noise_dbfs is not None:
                await self._idle_frame(r.first_send_ns if r is not None else None)
            else:
                self._wake.clear()
                until = r.first_send_ns if r is not None else now + 1_000_000_000
                try:
                    await asyncio.wait_for(self._wake.wait(), max(0.0, (until - now) / 1e9))
                except TimeoutError:
                    pass

    async def _send_chunk(self, pcm: np.ndarray, audible: bool = False) -> tuple[int, int, int]:
        """Send PCM16 samples `pcm`; (send time, heard start time, message sequence number).
        `audible`: part of a reply from its first word on, which never waits behind more than
        STALE_QUIET_MS of queued idle audio (the caller's playout model, `harness.playout`)."""
        data = pcm.tobytes()
        sent = await self._send_audio(data) or time.perf_counter_ns()  # when it went to the socket
        if audible and self._audible_until_ns <= sent and self._heard_end_ns - sent > STALE_NS:
            self._heard_end_ns = sent + STALE_NS
        heard = max(sent, self._heard_end_ns)
        self._heard_end_ns = heard + int(round(len(pcm) * SAMPLE_NS))
        if audible:
            self._audible_until_ns = self._heard_end_ns
        self.chunk_sends.append(sent)
        self.chunk_heard.append(heard)
        return sent, heard, len(self.chunk_sends) - 1

    async def _idle_frame(self, until_ns: int | None) -> None:
        await sleep_until(self._heard_end_ns)
        now = time.perf_counter_ns()
        stall = self.cfg.stall_before_reply_ms
        if stall and until_ns is not None and until_ns - now <= stall * 1e6 and self._stalled_for != until_ns:
            await self._stall(now, until_ns)
            return
        n = FRAME_SAMPLES
        if until_ns is not None:
            n = min(n, int((until_ns - now) / SAMPLE_NS))
        if self._pending is not None and self._pending.first_send_ns <= now:
            return
        if n > 0:
            await self._send_chunk(float_to_pcm16(white_noise(n, self.cfg.noise_dbfs, self._rng)))

    async def _stall(self, now: int, until_ns: int) -> None:
        """Send nothing until the reply is due, then the idle noise of that time all at once."""
        self._stalled_for = until_ns
        await sleep_until(until_ns)
        n = int((until_ns - now) / SAMPLE_NS)
        for k in range(0, n, FRAME_SAMPLES):
            await self._send_chunk(float_to_pcm16(white_noise(min(FRAME_SAMPLES, n - k), self.cfg.noise_dbfs, self._rng)))

    async def _play(self, r: _Reply) -> None:
        step = max(1, int(self.cfg.chunk_ms * SAMPLE_RATE / 1000))
        talk = talk_spans(r.runs) if r.runs is not None else None
        chunk_ns = step * SAMPLE_NS / self.cfg.burst if self.cfg.burst > 0 else 0
        lookahead = 10_000_000 if self.cfg.burst > 0 else 0
        try:
            for k, a in enumerate(range(0, len(r.audio), step)):
                due = int(r.first_send_ns + k * chunk_ns) - (lookahead if k else 0)
                await sleep_until(due)
                b = min(a + step, len(r.audio))
                heard = max(time.perf_counter_ns(), self._heard_end_ns)
                if r.stop_at_ns is not None:
                    b = min(b, a + int((r.stop_at_ns - heard) / SAMPLE_NS))
                    if b <= a:
                        return
                audible = b > 0 if talk is None else spans_overlap(talk, a, b)
                marked = r.content_at is not None and a <= r.content_at < b and self.cfg.events
                if r.content_at is not None and k == 0 and self.cfg.events:
                    await self._send_event({"type": "response.filler", "kind": "ack"})
                if marked:  # just before its audio, as the reference agent's mouth does
                    await self._send_event({"type": "response.content_start",
                                            "offset_ms": (r.content_at - a) * 1000 / SAMPLE_RATE})
                sent, heard, seq = await self._send_chunk(r.audio[a:b], audible=audible)
                r.chunks.append((sent, heard, a, b, seq))
                if marked:
                    r.content_mark = (seq, r.content_at - a)
                if r.stop_at_ns is not None and b < min(a + step, len(r.audio)):
                    return
        finally:
            r.audio = r.audio[:0]

    # -- ground truth -------------------------------------------------------------------------

    def heard_spurts(self) -> list[tuple[int, int, int, int, int, int]]:
        """Talk spurts as the listener hears them: (onset, last audible sample, send time of the
        onset's chunk, that chunk's sequence number, the last sample's chunk sequence number,
        the index of the `clear` that cut the spurt short or -1).

        Array work per reply, not per chunk: at hang-up it runs once per call, and a Python loop
        over every 20 ms chunk took ~4 ms a call (500 calls ending together stalled the loop 2 s)."""
        pieces = [w for w in (_heard_words(r, self.clear_sends) for r in self._replies if r.chunks) if len(w[0])]
        if not pieces:
            return []
        on, off, sent, seq, by_clear = (np.concatenate(col) for col in zip(*pieces))
        order = np.lexsort((by_clear, seq, sent, off, on))
        on, off, sent, seq, by_clear = on[order], off[order], sent[order], seq[order], by_clear[order]
        reach = np.maximum.accumulate(off)
        # a word more than STOP_SILENCE after everything heard so far starts a new spurt
        first = np.flatnonzero(np.r_[True, on[1:] - reach[:-1] - SAMPLE_NS >= STOP_SILENCE_NS])
        # the word that last extended a spurt's end gives its end, end chunk and clear
        extends = np.flatnonzero(off == reach)
        last = extends[np.searchsorted(extends, np.r_[first[1:], len(on)], side="left") - 1]
        return [(int(on[f]), int(off[e]), int(sent[f]), int(seq[f]), int(seq[e]), int(by_clear[e]))
                for f, e in zip(first, last)]

    def finalize(self, barge_in_threshold_ms: float = 500.0) -> list[TurnTruth]:
        """Fill every turn's truth from what was actually heard; call when the call has ended."""
        spurts = self.heard_spurts()
        order = sorted(self.truth)
        for pos, idx in enumerate(order):
            t = self.truth[idx]
            if t.start_arrival_ns is None or t.eos_arrival_ns is None:
                continue
            start, eos = t.start_arrival_ns, t.eos_arrival_ns
            nxt = self.truth[order[pos + 1]].start_arrival_ns if pos + 1 < len(order) else None
            end = nxt if nxt is not None else eos + 60_000_000_000
            playing = next((s for s in spurts if s[0] <= start <= s[1]), None)
            t.audible_at_start = playing is not None
            before = [s for s in spurts if s[1] < start]
            t.silent_for_ms = None if playing is not None or not before else round((start - before[-1][1]) / 1e6, 3)
            if t.kind != "backchannel":
                t.false_interruption = any(start < s[0] <= eos for s in spurts)
                resp = next((s for s in spurts if eos < s[0] <= end), None)
                if resp is not None:
                    t.latency_ms = round((resp[0] - eos) / 1e6, 3)
                    sent = self._packet_time(resp[0]) if self._packet_time is not None else resp[2]
                    t.first_byte_ms = round(max(0, sent - eos) / 1e6, 3)
                    t.response_chunk_seq = resp[3]
                    answer = [sp for sp in spurts if resp[0] <= sp[0] < end]
                    gap = max(zip(answer, answer[1:]), key=lambda ab: ab[1][0] - ab[0][1], default=None)
                    t.dead_air_ms = 0.0 if gap is None else round((gap[1][0] - gap[0][1]) / 1e6, 3)
                    t.dead_air_chunks = None if gap is None else (gap[0][4], gap[1][3])
                    mark = next((r.content_mark for r in self._replies if r.turn == idx and r.content_mark), None)
                    if mark is not None and resp is not None:
                        heard = self.chunk_heard[mark[0]] + int(round(mark[1] * SAMPLE_NS))
                        t.first_content_ms = round((heard - eos) / 1e6, 3)
                        t.content_chunk_seq = mark[0]
            if playing is not None and t.kind == "barge_in":
                t.barge_in_stop_ms = round((playing[1] - start) / 1e6, 3)
                t.stop_chunk_seq = playing[4]
                t.stop_clear_index = playing[5] if playing[5] >= 0 else None
            if playing is not None and t.kind == "backchannel":
                t.backchannel_kept_talking = playing[1] > max(eos, start + int(barge_in_threshold_ms * 1e6))
        return [self.truth[i] for i in order]

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()


def _heard_words(r: _Reply, clear_sends: list[int]) -> tuple[np.ndarray, ...]:
    """Every audible run of reply `r`'s voice within each chunk as heard, after the `clear`s:
    arrays (onset, last sample, chunk send time, chunk sequence number, clear index or -1)."""
    if r.runs is None:
        edges = np.diff((r.voice != 0).astype(np.int8), prepend=0, append=0)
        r.runs = (np.flatnonzero(edges == 1), np.flatnonzero(edges == -1))
    starts, ends = r.runs  # [start, end) of each run of non-zero samples
    sent, heard, a, b, seq = (np.array(col, dtype=np.int64) for col in zip(*r.chunks))
    clears = np.asarray(clear_sends, dtype=np.int64)
    cut = np.searchsorted(clears, sent, side="left")  # the first clear sent at or after the chunk
    cut = np.where(cut < len(clears), cut, -1)
    kept = b - a
    if len(clears):  # a clear drops what had not been heard when it was sent
        heard_for = np.trunc((clears[np.maximum(cut, 0)] - heard) / SAMPLE_NS).astype(np.int64)
        kept = np.where(cut >= 0, np.minimum(kept, np.maximum(0, heard_for)), kept)
    end = a + kept
    lo = np.searchsorted(ends, a, side="right")  # first run ending after the chunk's start
    count = np.where(kept > 0, np.maximum(0, np.searchsorted(starts, end, side="left") - lo), 0)
    chunk = np.repeat(np.arange(len(a)), count)
    run = lo[chunk] + np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    s = np.maximum(starts[run], a[chunk]) - a[chunk]
    e = np.minimum(ends[run], end[chunk]) - a[chunk]
    cut_short = (cut[chunk] >= 0) & (e == kept[chunk]) & (kept[chunk] < (b - a)[chunk])
    return (heard[chunk] + np.round(s * SAMPLE_NS).astype(np.int64),
            heard[chunk] + np.round((e - 1) * SAMPLE_NS).astype(np.int64),
            sent[chunk], seq[chunk], np.where(cut_short, cut[chunk], -1))


def talk_spans(runs: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """A reply's talk spurts in samples, [start, end): its voice runs with gaps under
    STOP_SILENCE bridged, as the listener's spurts bridge them. A chunk inside one is audible
    to the caller's playout (and never waits behind stale quiet audio); a chunk in a longer gap
    is not, as on the caller's side."""
    starts, ends = runs
    if not len(starts):
        return starts, ends
    stop = int(round(STOP_SILENCE_NS / SAMPLE_NS))
    reach = np.maximum.accumulate(ends)
    new = np.flatnonzero(np.r_[True, starts[1:] - reach[:-1] >= stop])
    return starts[new], reach[np.r_[new[1:] - 1, len(ends) - 1]]


def spans_overlap(spans: tuple[np.ndarray, np.ndarray], a: int, b: int) -> bool:
    """Does [a, b) overlap any [start, end) span?"""
    starts, ends = spans
    i = int(np.searchsorted(ends, a, side="right"))
    return i < len(starts) and int(starts[i]) < b


def with_gap(pcm: np.ndarray, voice: np.ndarray | None, runs: tuple[np.ndarray, np.ndarray], after: int,
             gap: int) -> tuple[np.ndarray, np.ndarray | None, tuple[np.ndarray, np.ndarray]]:
    """A reply with `gap` samples of silence between two words: after the first word that ends at
    or past sample `after` (none when no word follows it: trailing silence is not dead air)."""
    starts, ends = runs
    k = int(np.searchsorted(ends, after))
    if k >= len(ends) - 1:
        return pcm, voice, runs
    at = int(ends[k])

    def widen(x: np.ndarray) -> np.ndarray:
        return np.concatenate([x[:at], np.zeros(gap, x.dtype), x[at:]])
    return (widen(pcm), None if voice is None else widen(voice),
            (np.where(starts >= at, starts + gap, starts), np.where(ends > at, ends + gap, ends)))


def truth_to_json(t: TurnTruth) -> dict:
    return {"schema": "turnbench.oracle_truth/1", **asdict(t)}
