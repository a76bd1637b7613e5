"""Per-turn results from one call's timeline, exactly as docs/metrics.md defines the metrics."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

import numpy as np

from harness.audio.frames import SAMPLE_RATE
from harness.audio.onset import (
    DEFAULT_DETECTOR,
    DetectorConfig,
    Interval,
    noise_floor_dbfs,
    reply_intervals,
)
from harness.metrics.catalog import STAGES
from harness.metrics.envelope import peaks
from harness.playout import HeardAudio, play_out
from harness.records.received import AudioReceived, PlayoutCleared
from harness.records.timeline import CallTimeline, PlannedTurn

TURN_SCHEMA = "turnbench.turn/2"
"""/2: `stages_ms` are consecutive intervals that sum to the latency (with `turn_detection`); /1 held
the durations the agents reported, now `stages_reported_ms`."""
STOP_SILENCE_MS = 250.0
FI_KINDS = ("utterance", "paused", "filler", "barge_in")
RESPONSE_KINDS = ("utterance", "paused", "filler", "barge_in")
STAGE_EVENTS = {"turn.end": "turn_detection", "stt.final": "stt_final", "llm.first_token": "llm_ttft",
                "tts.first_audio": "tts_ttfb"}
"""The trace event that ends each stage (the last stage, `transport`, ends when the reply is heard)."""


@dataclass
class TurnResult:
    """One line of turns.jsonl. A field that does not apply is None, never omitted."""

    call_id: str
    turn: int
    kind: str
    fixture: str
    latency_ms: float | None = None
    first_byte_ms: float | None = None
    false_interruption: bool | None = None
    false_interruption_at_ms: float | None = None
    barge_in_stop_ms: float | None = None
    barge_in_success: bool | None = None
    backchannel_ok: bool | None = None
    no_response: bool | None = None
    transcript: str | None = None
    wer: float | None = None
    turn_detection_ms: float | None = None
    dead_air_ms: float | None = None
    """The longest silence inside the reply, between its first audio and the caller's next turn:
    the largest gap between consecutive talk spurts (0 when the reply is one spurt; gaps under
    250 ms are inside a spurt)."""
    dead_air_start_s: float | None = None
    """Where that longest gap begins (the reply's last audible sample before it), same axis as `eos_s`."""
    first_content_ms: float | None = None
    """EOS → the first audible sample of the reply's content, where the agent marks it with a
    `response.content_start` event sent just before that audio: fillers ("let me pull that up")
    before it are audio but not content. None where the agent marks nothing."""
    fillers: int | None = None
    """Filler lines the agent marked (`response.filler`) between EOS and the caller's next turn."""
    speculative_reply: bool | None = None
    """The reply was begun before the turn was confirmed (its `llm.first_token` says `speculative`)."""
    speculations_discarded: int | None = None
    """Speculative replies the agent began and threw away during this turn (`llm.speculation_discarded`)."""
    stages_ms: dict | None = None
    """Consecutive intervals on the caller's clock, EOS → turn.end → stt.final → llm.first_token →
    tts.first_audio → heard, by when each event arrived: they sum to `latency_ms` exactly."""
    stages_overlap_ms: dict | None = None
    """Per stage, how long before the previous milestone its event came (work done in parallel or
    ahead, e.g. STT inside turn detection, speculation): the stage itself counts 0 then."""
    stages_merged: dict | None = None
    """A stage whose event never came is merged into the next one: {next stage: [merged stages]}."""
    stages_reported_ms: dict | None = None
    """The durations the agent's events carried (`duration_ms`), as the agent measured them."""
    error: str | None = None
    eos_s: float | None = None
    """EOS, in seconds from the call's first frame (to place the turn on a timeline)."""
    response_onset_s: float | None = None
    speech_start_s: float | None = None
    """The turn's first speech sample, same axis as `eos_s` (barge-in onset, false-interruption origin)."""
    call_started_s: float | None = None
    """When the call started, in seconds from the start of the run (latency over the run's time)."""
    calls_in_flight: int | None = None
    """Calls in flight when this call started, itself included (latency against concurrency)."""
    setup_ms: float | None = None
    """The call's connection setup where the transport has one (WebRTC: offer → connected;
    OpenAI Realtime: upgrade → session.updated);
    the same on every turn of the call, and never part of any turn's latency."""
    start_lag_ms: float | None = None
    """Open-loop load: how late the call started against its intended start (coordinated
    omission made visible); null where calls are not scheduled."""
    schema: str = field(default=TURN_SCHEMA)

    def to_json(self) -> dict:
        d = asdict(self)
        return {"schema": d.pop("schema"), **d}


@dataclass(frozen=True)
class Spurt:
    """A stretch of audible agent audio (gaps under 250 ms bridged), in heard time."""

    onset_ns: int
    end_ns: int
    """Heard time of the last audible sample."""
    first_chunk_arrival_ns: int


@dataclass(frozen=True)
class AnalysisSettings:
    response_timeout_s: float = 8.0
    barge_in_threshold_ms: float = 500.0
    detector: DetectorConfig = DEFAULT_DETECTOR


def agent_spurts(heard: HeardAudio, detector: DetectorConfig = DEFAULT_DETECTOR) -> list[Spurt]:
    """The agent's talk spurts as a listener hears them (docs/metrics.md, "Audible").

    The floor is estimated over everything heard from the agent's first audio on: a gap in what
    it sent is silence to the listener, as it is on any phone line."""
    return _spurts(heard, _spurt_intervals(heard, detector))


def _spurts(heard: HeardAudio, ivs: list[Interval]) -> list[Spurt]:
    return [Spurt(heard.time_ns(iv.start), heard.time_ns(iv.end),
                  int(heard.arrivals_ns[heard.chunk[iv.start]])) for iv in ivs]


def _spurt_intervals(heard: HeardAudio, detector: DetectorConfig) -> list[Interval]:
    received = np.flatnonzero(heard.valid)
    first = int(received[0]) if received.size else 0
    floor = noise_floor_dbfs(heard.samples[first:], cfg=detector)
    return reply_intervals(heard.samples, floor, int(SAMPLE_RATE * STOP_SILENCE_MS / 1000), detector)


def _ms(a_ns: int, b_ns: int) -> float:
    return round((b_ns - a_ns) / 1e6, 3)


_WORD = re.compile(r"[a-z0-9']+")


def word_error_rate(reference: str, hypothesis: str) -> float:
    """WER with lower-casing and punctuation removed on both sides (jiwer)."""
    import jiwer
    ref = " ".join(_WORD.findall(reference.lower()))
    hyp = " ".join(_WORD.findall(hypothesis.lower()))
    if not ref:
        return 0.0 if not hyp else 1.0
    return round(float(jiwer.wer(ref, hyp)), 4)


def hear(tl: CallTimeline, detector: DetectorConfig = DEFAULT_DETECTOR) -> tuple[HeardAudio, list[Spurt]]:
    """The agent's audio of a call as the caller hears it, and its talk spurts (`hear_audio`)."""
    return hear_audio(tl.audio, tl.t0_ns, tl.clears, detector)


def hear_audio(audio: list[AudioReceived], origin_ns: int, clears: list[PlayoutCleared] = (),
               detector: DetectorConfig = DEFAULT_DETECTOR) -> tuple[HeardAudio, list[Spurt]]:
    """Received agent audio as a listener hears it, and its talk spurts.

    Played out once to find which received chunks hold anything audible; if audible audio then
    queued behind more than a few ms of chunks holding nothing audible (a stall delivered idle
    noise late), played out again without that stale audio, as a jitter buffer would (see
    `harness.playout`)."""
    heard = play_out(audio, origin_ns, clears)
    ivs = _spurt_intervals(heard, detector)
    audible = np.zeros(len(audio), dtype=bool)
    for iv in ivs:
        ids = heard.chunk[iv.start : iv.end + 1]
        audible[ids[ids >= 0]] = True
    again = play_out(audio, origin_ns, clears, audible)
    if again.dropped_stale:  # only then is the detection run again
        heard, ivs = again, _spurt_intervals(again, detector)
    return heard, _spurts(heard, ivs)


def analyze_call(tl: CallTimeline, expected_turns: list[tuple[int, str, str]],
                 settings: AnalysisSettings = AnalysisSettings()) -> list[TurnResult]:
    """Every expected turn of the call, measured; turns the call never reached carry an error."""
    heard, spurts = hear(tl, settings.detector)
    return _analyze(tl, expected_turns, settings, spurts, heard)


def analyze_call_heard(tl: CallTimeline, expected_turns: list[tuple[int, str, str]],
                       settings: AnalysisSettings = AnalysisSettings()) -> tuple[list[TurnResult], np.ndarray, int]:
    """`analyze_call`, plus the heard agent audio as 10 ms peaks and the heard-time origin (for the
    call's timeline in the report)."""
    heard, spurts = hear(tl, settings.detector)
    return _analyze(tl, expected_turns, settings, spurts, heard), peaks(heard.samples), heard.origin_ns


def _analyze(tl: CallTimeline, expected_turns: list[tuple[int, str, str]], settings: AnalysisSettings,
             spurts: list[Spurt], heard: HeardAudio) -> list[TurnResult]:
    placed = {t.index: t for t in tl.turns}
    out = []
    timeout_ns = int(settings.response_timeout_s * 1e9)
    marks = content_marks(tl, heard)
    for pos, (index, kind, fixture) in enumerate(expected_turns):
        turn = placed.get(index)
        if turn is None:
            out.append(TurnResult(tl.call_id, index, kind, fixture,
                                  error=tl.error or "call ended before this turn"))
            continue
        nxt = placed.get(expected_turns[pos + 1][0]) if pos + 1 < len(expected_turns) else None
        out.append(_analyze_turn(tl, turn, nxt, spurts, timeout_ns, settings, marks))
    return out


def _analyze_turn(tl: CallTimeline, turn: PlannedTurn, nxt: PlannedTurn | None, spurts: list[Spurt],
                  timeout_ns: int, settings: AnalysisSettings, marks: list[tuple[int, int]] = ()) -> TurnResult:
    r = TurnResult(tl.call_id, turn.index, turn.kind, turn.fixture)
    start_ns = tl.sample_sent_ns(turn.first_speech_sample)
    eos_ns = tl.sample_sent_ns(turn.eos_sample)
    if start_ns is None or eos_ns is None:
        r.error = tl.error or "call ended while this turn was being spoken"
        return r
    r.eos_s = round((eos_ns - tl.t0_ns) / 1e9, 6)
    r.speech_start_s = round((start_ns - tl.t0_ns) / 1e9, 6)
    window_end = eos_ns + timeout_ns
    next_start = tl.sample_sent_ns(nxt.first_speech_sample) if nxt is not None else None
    if next_start is not None:
        window_end = min(window_end, next_start)
    if tl.ended_ns is not None and tl.error:
        window_end = min(window_end, tl.ended_ns)

    playing_at_start = next((s for s in spurts if s.onset_ns <= start_ns <= s.end_ns), None)
    during = [s for s in spurts if start_ns < s.onset_ns <= eos_ns]
    after = next((s for s in spurts if eos_ns < s.onset_ns <= window_end), None)

    if turn.kind in FI_KINDS:
        r.false_interruption = bool(during)
        if during:
            r.false_interruption_at_ms = _ms(start_ns, during[0].onset_ns)
    if turn.kind in RESPONSE_KINDS:
        if after is not None:
            r.latency_ms = _ms(eos_ns, after.onset_ns)
            r.first_byte_ms = max(0.0, _ms(eos_ns, after.first_chunk_arrival_ns))
            r.response_onset_s = round((after.onset_ns - tl.t0_ns) / 1e9, 6)
            gap = longest_gap(spurts, after, next_start or tl.ended_ns or window_end)
            r.dead_air_ms = 0.0 if gap is None else _ms(gap[0], gap[1])
            r.dead_air_start_s = None if gap is None else round((gap[0] - tl.t0_ns) / 1e9, 6)
            content = next((heard_at for arrival, heard_at in marks if eos_ns < arrival <= window_end), None)
            if content is not None:
                onset = audible_from(spurts, content)
                r.first_content_ms = None if onset is None else _ms(eos_ns, onset)
        talking_over_eos = any(s.onset_ns <= eos_ns < s.end_ns for s in during)
        r.no_response = after is None and not talking_over_eos
    if turn.kind == "barge_in" and playing_at_start is not None:
        r.barge_in_stop_ms = _ms(start_ns, playing_at_start.end_ns)
        r.barge_in_success = r.barge_in_stop_ms <= settings.barge_in_threshold_ms and r.latency_ms is not None
    if turn.kind == "backchannel" and playing_at_start is not None:
        keep_until = max(eos_ns, start_ns + int(settings.barge_in_threshold_ms * 1e6))
        r.backchannel_ok = playing_at_start.end_ns > keep_until
    _agent_trace(tl, turn, r, eos_ns, window_end)
    _agent_moves(tl, r, start_ns, eos_ns, window_end)
    if tl.error and r.no_response:
        r.error = tl.error
    return r


def content_marks(tl: CallTimeline, heard: HeardAudio) -> list[tuple[int, int]]:
    """(arrival, heard time) of each `response.content_start` mark: the agent sends it just before
    the audio it marks (plus `offset_ms` into that audio), so the marked audio is the first chunk
    that arrived at or after it. A mark whose audio was never heard (cleared) is left out."""
    out = []
    if not tl.audio:
        return out
    arrivals = np.array([a.arrival_ns for a in tl.audio], dtype=np.int64)
    for ev in tl.events:
        if ev.event.get("type") != "response.content_start":
            continue
        k = int(np.searchsorted(arrivals, ev.arrival_ns, side="left"))
        if k >= len(arrivals):
            continue
        where = np.flatnonzero(heard.chunk == k)
        if not where.size:
            continue
        offset = ev.event.get("offset_ms")
        skip = int(round(float(offset) * SAMPLE_RATE / 1000)) if isinstance(offset, (int, float)) and offset > 0 else 0
        out.append((ev.arrival_ns, heard.time_ns(int(where[0]) + skip)))
    return out


def audible_from(spurts: list[Spurt], t_ns: int) -> int | None:
    """The first audible instant at or after `t_ns` (inside a spurt: `t_ns` itself)."""
    for s in spurts:
        if s.end_ns >= t_ns:
            return max(s.onset_ns, t_ns)
    return None


def _agent_moves(tl: CallTimeline, r: TurnResult, start_ns: int, eos_ns: int, window_end: int) -> None:
    """Fillers, and speculation, from the agent's own events (None where it sends none)."""
    fillers = discarded = 0
    speculative = None
    for ev in tl.events:
        kind = ev.event.get("type")
        if kind == "llm.speculation_discarded" and start_ns < ev.arrival_ns <= window_end:
            discarded += 1
        if not eos_ns < ev.arrival_ns <= window_end:
            continue
        if kind == "response.filler":
            fillers += 1
        elif kind == "llm.first_token" and speculative is None:
            speculative = bool(ev.event.get("speculative"))
    kinds = {ev.event.get("type") for ev in tl.events}
    if "response.filler" in kinds or "tool.started" in kinds:
        r.fillers = fillers
    if "llm.speculation_started" in kinds:
        r.speculations_discarded = discarded
    r.speculative_reply = speculative


def longest_gap(spurts: list[Spurt], first: Spurt, answer_end_ns: int) -> tuple[int, int] | None:
    """(end of one spurt, onset of the next) of the longest silence between consecutive spurts
    from `first` on that begin before `answer_end_ns`; None when the answer is one spurt."""
    answer = [s for s in spurts if first.onset_ns <= s.onset_ns < answer_end_ns]
    gaps = [(a.end_ns, b.onset_ns) for a, b in zip(answer, answer[1:])]
    return max(gaps, key=lambda g: g[1] - g[0], default=None)


def _agent_trace(tl: CallTimeline, turn: PlannedTurn, r: TurnResult, eos_ns: int, window_end: int) -> None:
    """Turn detection, stage breakdown and transcript, from the agent's own events."""
    arrived: dict[str, int] = {}
    reported: dict[str, float] = {}
    for ev in tl.events:
        if not eos_ns < ev.arrival_ns <= window_end:
            continue
        kind = ev.event.get("type")
        stage = STAGE_EVENTS.get(kind)
        if stage is None or stage in arrived:
            continue
        arrived[stage] = ev.arrival_ns
        dur = ev.event.get("duration_ms")
        if isinstance(dur, (int, float)) and not isinstance(dur, bool) and 0 <= dur < float("inf"):
            reported[stage] = round(float(dur), 3)
        if kind == "stt.final" and isinstance(ev.event.get("text"), str):
            r.transcript = ev.event["text"]
    if "turn_detection" in arrived:
        r.turn_detection_ms = _ms(eos_ns, arrived["turn_detection"])
    if r.transcript is not None:
        r.wer = word_error_rate(turn.text, r.transcript)
    if reported:
        r.stages_reported_ms = reported
    if r.latency_ms is not None and set(arrived) - {"turn_detection"}:
        heard_ns = eos_ns + int(round(r.latency_ms * 1e6))
        r.stages_ms, r.stages_overlap_ms, r.stages_merged = stage_intervals(eos_ns, arrived, heard_ns)


def stage_intervals(eos_ns: int, arrived: dict[str, int], heard_ns: int) -> tuple[dict, dict | None, dict | None]:
    """Consecutive stages from EOS to the reply heard, by when each stage's event arrived.

    Each milestone is the later of its event and the previous milestone (and no later than the
    reply heard), so the stages are never negative and sum to the latency exactly; an event that
    came before the previous milestone is overlap, one that never came merges into the next stage."""
    stages: dict[str, float | None] = {}
    overlap: dict[str, float] = {}
    merged: dict[str, list[str]] = {}
    waiting: list[str] = []
    prev = eos_ns
    for stage in STAGES:
        at = heard_ns if stage == "transport" else arrived.get(stage)
        if at is None:
            stages[stage] = None
            waiting.append(stage)
            continue
        if at < prev:
            overlap[stage] = _ms(at, prev)
        milestone = min(max(at, prev), heard_ns)
        if at > heard_ns:  # the event came after the reply was heard (sent behind its audio)
            overlap[stage] = -_ms(heard_ns, at)
        stages[stage] = _ms(prev, milestone)
        if waiting:
            merged[stage], waiting = waiting, []
        prev = milestone
    return stages, overlap or None, merged or None
