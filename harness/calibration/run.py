"""Run every calibration case side by side against in-process oracles and compare."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np

from harness.agent.server import OracleServer
from harness.audio.fixtures import FixtureLibrary
from harness.audio.frames import FRAME_SAMPLES, SAMPLE_NS, SAMPLE_RATE
from harness.calibration.cases import CASES, Case, calibration_scenario
from harness.calibration.compare import DEFAULT_BOUNDS, IMPAIRED_BOUNDS, TWILIO_BOUNDS, WEBRTC_BOUNDS, Comparison
from harness.caller.call import CallSettings
from harness.caller.runner import RunOutcome, RunSpec, run_calls
from harness.metrics.turns import AnalysisSettings, TurnResult, hear, hear_audio
from harness.playout import CatchUp, HeardAudio
from harness.records.timeline import CallTimeline
from harness.transports.impair import ImpairmentProfile

WEBRTC_CODEC_MS = 26.5
"""One 20 ms packet + Opus's 6.5 ms look-ahead."""
CUT_TOLERANCE_MS = 5.0
"""How much earlier in a reply than the oracle's model a `clear` may cut the caller's stream and
still be the stop's own message (mid-word: the reply's words are 150–350 ms)."""
WIRE_SLACK_SAMPLES = 2
"""Twilio's 8 kHz wire carries a chunk's odd 16 kHz sample over to the next chunk, so the caller's
chunk edges sit up to one wire sample (2 stream samples) off the oracle's: a stop on a chunk's
last sample may be the caller's chunk's last sample plus one or two."""
PARALLEL_CASES = 8
"""Behaviours measured at once over ws-pcm and Twilio (WebRTC: 2)."""
CASE_STAGGER_S = 0.037
"""Start offset between cases (not a multiple of the 20 ms frame)."""


async def calibrate(fixtures: FixtureLibrary, cases: tuple[Case, ...] = CASES, calls_per_case: int = 2,
                    transport: str = "ws-pcm", seed: int = 0, bounds: dict | None = None,
                    progress: Callable[[int, int], None] = lambda done, total: None,
                    parallel_cases: int | None = None, impairment: ImpairmentProfile | None = None) -> dict:
    """Measure each case's calls with the normal caller and score them against the oracle's log."""
    cases = tuple(c for c in cases if c.transports is None or transport in c.transports)
    if bounds is None:
        bounds = {"webrtc": WEBRTC_BOUNDS, "twilio": TWILIO_BOUNDS}.get(transport, DEFAULT_BOUNDS)
    if impairment is not None and transport != "webrtc":  # measured = truth + what the path added, to the ms
        bounds = bounds | IMPAIRED_BOUNDS
    scenario = calibration_scenario()
    threshold = scenario.defaults.barge_in_threshold_ms
    settings = CallSettings(response_timeout_s=scenario.defaults.response_timeout_s,
                            reply_silence_ms=scenario.defaults.reply_silence_ms, hints=True, seed=seed)
    run = _CaseRun(scenario, fixtures, transport, calls_per_case, settings,
                   AnalysisSettings(settings.response_timeout_s, threshold), impairment, progress,
                   len(cases) * calls_per_case)
    servers = await run.measure(cases, seed, threshold, parallel_cases)
    # WebRTC's packetisation and codec delay is not in any stamp: allow one
    # packet plus Opus's look-ahead when judging what the caller heard at a barge-in's start
    comp = Comparison(threshold_ms=threshold, codec_ms=WEBRTC_CODEC_MS if transport == "webrtc" else 0.0)
    heard: dict[tuple[str, str], HeardAudio] = {}  # per call, not per turn: hearing a call is the costly part
    for case, srv in zip(cases, servers):
        truth = {(t.call_id, t.turn): t for t in srv.truth}
        for r in run.results[case.name]:
            tl = run.timelines.get((case.name, r.call_id))
            if tl is not None and (case.name, r.call_id) not in heard:
                heard[case.name, r.call_id] = hear(tl)[0]
            _score_turn(comp, case.name, r, truth.get((r.call_id, r.turn)), tl, heard.get((case.name, r.call_id)),
                        srv.message_stamps.get(r.call_id), transport, impairment)
    late = [x for o in run.outcomes for x in o.lateness_ms]
    health = RunOutcome(lateness_ms=late, loop_lag_p99_ms=max((o.loop_lag_p99_ms or 0) for o in run.outcomes),
                        cpu_steal_pct=max((o.cpu_steal_pct or 0) for o in run.outcomes)).harness_health()
    described = [{"name": c.name, "expect": c.expect, "oracle": c.oracle.model_dump(exclude_defaults=True)} for c in cases]
    return comp.report(transport, impairment.to_json() if impairment is not None else None, bounds=bounds,
                       cases=described, harness=health)


class _CaseRun:
    """Every case's calls against its own oracle, side by side: per-turn results, timelines, outcomes."""

    def __init__(self, scenario, fixtures: FixtureLibrary, transport: str, calls_per_case: int,
                 settings: CallSettings, analysis: AnalysisSettings, impairment: ImpairmentProfile | None,
                 progress: Callable[[int, int], None], total: int):
        self.scenario, self.fixtures, self.transport = scenario, fixtures, transport
        self.calls_per_case, self.settings, self.analysis = calls_per_case, settings, analysis
        self.impairment, self.progress, self.total, self.done = impairment, progress, total, 0
        self.results: dict[str, list[TurnResult]] = {}
        self.timelines: dict[tuple[str, str], CallTimeline] = {}
        self.outcomes: list[RunOutcome] = []

    async def one(self, case: Case, url: str) -> None:
        spec = RunSpec(self.scenario, self.fixtures, url, self.transport, self.calls_per_case, self.calls_per_case,
                       self.settings, self.analysis, call_id_in_url=True, impairment=self.impairment)

        def tick(_o: RunOutcome) -> None:
            self.done += 1
            self.progress(self.done, self.total)

        self.outcomes.append(await run_calls(spec, self.results.setdefault(case.name, []).extend, tick,
                                             lambda tl: self.timelines.__setitem__((case.name, tl.call_id), tl)))

    async def measure(self, cases: tuple[Case, ...], seed: int, threshold: float,
                      parallel_cases: int | None) -> list[OracleServer]:
        """Run every case; the oracles, stopped, with their truth and message stamps."""
        for c in cases:
            self.results[c.name] = []
        # The oracles share the caller's event loop: on a VM, waking a second process costs more
        # (and varies more) than the loopback itself. Arrivals are stamped at the socket read on
        # both sides, so the shared loop's queueing does not enter the numbers.
        servers = [OracleServer(c.oracle.model_copy(update={"seed": seed}), barge_in_threshold_ms=threshold)
                   for c in cases]
        try:
            for s in servers:
                await s.start()
            # WebRTC peers cost far more CPU (SRTP, Opus, both ends in this process): fewer at once,
            # or the harness's own lateness would be what gets measured; on the others all 15
            # behaviours at once (30 calls, 15 oracles on one loop of a 2-core VM) put ~4 ms on a
            # barge-in stop's net p99 where 8 at once keep it under 0.6 ms
            admit = asyncio.Semaphore(parallel_cases or (2 if self.transport == "webrtc" else PARALLEL_CASES))

            async def gated(case: Case, url: str, offset_s: float) -> None:
                await asyncio.sleep(offset_s)
                async with admit:
                    await self.one(case, url)

            # every case runs the same script: started together, all their oracles would take each
            # turn's EOS (and build a reply) in the same instant on this one loop, and each would read
            # its caller's next frame late behind the others' work; staggered starts keep the
            # calibrated path free of that artificial pile-up
            async with asyncio.TaskGroup() as tg:
                for n, (case, srv) in enumerate(zip(cases, servers)):
                    tg.create_task(gated(case, srv.url_for(self.transport), n * CASE_STAGGER_S))
            await asyncio.sleep(0.3)  # let the servers see the hang-ups and finalise their truth
        finally:
            for s in servers:
                await s.stop()
        return servers


def _score_turn(comp: Comparison, case: str, r: TurnResult, t, tl: CallTimeline | None, heard: HeardAudio | None,
                stamps, transport: str, impairment: ImpairmentProfile | None) -> None:
    """Pair one measured turn with the oracle's truth, net of the transport and the path."""
    delays = _transport_delays(tl, heard, stamps, r.turn, t)
    added = impairment_effects(tl, r) if impairment is not None else None
    if added is None and impairment is not None:
        comp.excluded += 1  # a lost packet held (or sat next to) the onset or the stop: the truth changed
        return
    if transport == "webrtc":  # re-framed audio: only the caller's frames pair up (see WEBRTC_BOUNDS)
        up = {k: v for k, v in delays.items() if k.startswith("up.")}
        for k, v in (added or {}).items():  # the uplink stamps hold the impairment's uplink already
            if up.get(f"up.{k}") is not None and v is not None:
                up[f"up.{k}"] += v["down"]
        comp.add(case, r, t, {}, uplink_ms=up)
    else:
        comp.add(case, r, t, {k: v for k, v in delays.items() if not k.startswith("up.")},
                 impairment_ms={k: v["up"] + v["down"] for k, v in (added or {}).items() if v is not None})


def _transport_delays(tl: CallTimeline | None, heard: HeardAudio | None,
                      stamps: tuple[list[int], list[int], list[int], list[int]] | None,
                      index: int, truth) -> dict[str, float | None]:
    """What the loopback added to a turn's numbers, from both ends' stamps of the same messages:
    the EOS (or barge-in start) frame on the way up, plus how much later the caller heard the
    reply's onset chunk (or the stop's last chunk) start than the oracle's playout model did,
    which includes queueing behind earlier chunks that the loopback delayed. For first byte,
    the onset chunk's own arrival delay instead. Keys are the metrics they correct. `heard`: the
    call as the caller heard it (`metrics.turns.hear`)."""
    if tl is None or heard is None or stamps is None or truth is None:
        return {}
    arrivals, oracle_sends, oracle_heard, clear_sends = stamps
    turn = next((t for t in tl.turns if t.index == index), None)
    if turn is None:
        return {}
    first = np.full(len(tl.audio_len), -1, dtype=np.int64)
    idx = np.flatnonzero(np.diff(heard.chunk, prepend=-1) != 0)
    idx = idx[heard.chunk[idx] >= 0]
    first[heard.chunk[idx]] = idx

    def up(sample: int) -> int | None:
        n = sample // FRAME_SAMPLES
        return arrivals[n] - tl.send_ns[n] if n < len(arrivals) and n < len(tl.send_ns) else None

    def down(seq: int | None) -> int | None:
        if seq is None or seq >= len(oracle_heard) or seq >= len(first) or first[seq] < 0:
            return None
        return heard.time_ns(int(first[seq])) - oracle_heard[seq]

    def arrival(seq: int | None) -> int | None:
        if seq is None or seq >= len(oracle_sends) or seq >= len(tl.audio_arrival_ns):
            return None
        return tl.audio_arrival_ns[seq] - oracle_sends[seq]

    def stop_delay(seq: int | None, by_clear: int | None) -> int | None:
        """How much later the caller heard the agent stop than the oracle's model did, from the
        stamps of the message that made the stop in the caller's stream: the stop chunk's heard
        shift when the caller heard the sample the truth stops on; a `clear`'s own delay when
        that clear cut the reply at most CUT_TOLERANCE_MS before it (mid-word: where it cut is
        the stop; the oracle's truth says which clear, or none when its clear was a no-op that
        the loopback made bite). None when a clear cut deeper (a path can leave the caller's
        playout further behind than it delays the clear; the cut may then fall in a word gap)."""
        if seq is None or truth.start_arrival_ns is None or not seq < min(len(oracle_heard), len(first)):
            return None
        stop_ns = truth.start_arrival_ns + int(round(truth.barge_in_stop_ms * 1e6))
        offset = int(round((stop_ns - oracle_heard[seq]) / SAMPLE_NS))
        played = int(np.count_nonzero(heard.chunk == seq)) if first[seq] >= 0 else 0
        near = played > offset - int(CUT_TOLERANCE_MS * SAMPLE_RATE / 1000)
        if by_clear is not None:
            return cleared(by_clear) if near else None
        if played + WIRE_SLACK_SAMPLES > offset:
            return down(seq)
        if not near or played == 0:
            return None
        cut_ns = heard.time_ns(int(first[seq]) + played)  # where the caller's playout of it ended
        k = min(range(len(tl.clears)), key=lambda c: abs(tl.clears[c].arrival_ns - cut_ns), default=None)
        return cleared(k) if k is not None and abs(tl.clears[k].arrival_ns - cut_ns) <= SAMPLE_NS else None

    def cleared(k: int | None) -> int | None:
        """A stop made by a `clear`: how much later the caller got it than the oracle sent it."""
        if k is None or k >= len(clear_sends) or k >= len(tl.clears):
            return None
        return tl.clears[k].arrival_ns - clear_sends[k]

    def total(a: int | None, b: int | None) -> float | None:
        return None if a is None or b is None else round((a + b) / 1e6, 3)

    return {"dead_air_ms": _gap_widening(down, truth),
            "up.latency_ms": total(up(turn.eos_sample), 0), "up.first_byte_ms": total(up(turn.eos_sample), 0),
            "up.barge_in_stop_ms": total(up(turn.first_speech_sample), 0),
            "latency_ms": total(up(turn.eos_sample), down(truth.response_chunk_seq)),
            "first_content_ms": total(up(turn.eos_sample), down(getattr(truth, "content_chunk_seq", None))),
            "first_byte_ms": total(up(turn.eos_sample), arrival(truth.response_chunk_seq)),
            "barge_in_stop_ms": total(up(turn.first_speech_sample),
                                      stop_delay(truth.stop_chunk_seq, truth.stop_clear_index))}


def _gap_widening(down: Callable[[int | None], int | None], truth) -> float | None:
    """How much wider the loopback made the longest gap inside a reply: the heard shift of the
    chunk after it less that of the chunk before it (0 for an answer in one spurt)."""
    if truth.dead_air_chunks is None:
        return 0.0 if truth.dead_air_ms is not None else None
    before, after = down(truth.dead_air_chunks[0]), down(truth.dead_air_chunks[1])
    return None if before is None or after is None else round((after - before) / 1e6, 3)


def impairment_effects(tl: CallTimeline, r: TurnResult) -> dict[str, dict | None] | None:
    """What the impairment added to each of a turn's numbers, from its own per-packet log: the
    uplink delay of the frame the number starts from, and how much later the chunk holding the
    measured onset was heard than it would have been without the downlink delay; for a stop
    (a `clear`'s or not), how much later the talk spurt ended than in the path-free stream.
    None when a lost packet held that onset or stop, or sat just before the onset or just after the
    stop (it may have held the true one: the oracle's truth no longer applies)."""
    if tl.impairment is None or not len(tl.audio_len):
        return {}
    turn = next((t for t in tl.turns if t.index == r.turn), None)
    if turn is None:
        return {}
    path = _PathFreeStream(tl)
    try:
        onset = path.down(r.response_onset_s)
        onset_arrival = path.down(r.response_onset_s, arrival=True)
        stop = None
        if r.barge_in_stop_ms is not None and r.speech_start_s is not None:
            stop = path.stopped(r.speech_start_s + r.barge_in_stop_ms / 1000)
    except LookupError:
        return None
    out: dict[str, dict | None] = {}
    if onset is not None:
        out["latency_ms"] = {"up": path.up(turn.eos_sample), "down": onset}
        out["first_byte_ms"] = {"up": path.up(turn.eos_sample), "down": onset_arrival}
    if stop is not None:
        out["barge_in_stop_ms"] = {"up": path.up(turn.first_speech_sample), "down": stop}
    if r.first_content_ms is not None and r.eos_s is not None:
        try:
            content = path.down(r.eos_s + r.first_content_ms / 1000)
        except LookupError:
            return None
        out["first_content_ms"] = None if content is None else {"up": path.up(turn.eos_sample), "down": content}
    if r.dead_air_start_s is not None:  # a gap inside the reply: how much the path widened it
        try:
            ended = path.stopped(r.dead_air_start_s)
            resumed = path.down(r.dead_air_start_s + r.dead_air_ms / 1000)
        except LookupError:
            return None
        out["dead_air_ms"] = None if ended is None or resumed is None else {"up": 0.0, "down": resumed - ended}
    elif r.dead_air_ms is not None:
        out["dead_air_ms"] = {"up": 0.0, "down": 0.0}
    return out


class _PathFreeStream:
    """A call's heard audio twice: as the caller heard it through the path (`post`) and as it
    would have without it (`pre`), chunk by chunk, so a heard moment's shift can be read off."""

    def __init__(self, tl: CallTimeline):
        self.tl, self.log = tl, tl.impairment
        log, audio = self.log, tl.audio
        self.post = hear(tl)[0]  # the caller's playout rules in both worlds, stale quiet audio included
        clear_added = log.clear_added_ns + [0] * (len(tl.clears) - len(log.clear_added_ns))
        pre_clears = [type(c)(c.arrival_ns - d) for c, d in zip(tl.clears, clear_added)]
        # the caller's stream without the path: every chunk the inner transport delivered, at its own
        # arrival; for a continuous stream (raw PCM logged), replayed through the same catch-up the
        # path's output went through (what it trimmed from a chunk's front is `lead` samples, in
        # either world)
        self.lead_post = np.zeros(len(audio), dtype=np.int64)
        self.lead_pre = np.zeros(len(audio), dtype=np.int64)
        self.pre_index = np.full(len(audio), -1)
        raw = np.frombuffer(bytes(log.inner_pcm), dtype="<i2") if len(log.inner_pcm) else None
        replay = CatchUp()
        pre_audio = []
        start = 0
        for t, n, kept, cut in zip(log.inner_arrival_ns, log.inner_len, log.inner_kept, log.inner_trimmed):
            if raw is not None:
                got = replay.admit(t, raw[start:start + n])
                lead = n - len(got)
            else:
                got, lead = (np.asarray(audio[kept].samples) if kept >= 0 else np.zeros(n, np.int16)), 0
            start += n
            if kept >= 0:
                self.lead_post[kept], self.lead_pre[kept] = cut, lead
                if len(got):
                    self.pre_index[kept] = len(pre_audio)
            if len(got):
                pre_audio.append(type(audio[0])(t, got))
        self.pre, self.pre_spurts = hear_audio(pre_audio, tl.t0_ns, pre_clears)

    def up(self, sample: int) -> float:
        """The uplink delay the path added to the frame holding `sample`, in ms."""
        n = sample // FRAME_SAMPLES
        return self.log.up_added_ns[n] / 1e6 if n < len(self.log.up_added_ns) else 0.0

    def down(self, heard_s: float | None, arrival: bool = False, side: int = -1) -> float | None:
        """Heard shift of the chunk playing at `heard_s` (or, `arrival`, its own added delay).
        A lost packet holding it, or just before an onset (`side` -1) / just after a stop (+1),
        may have held the true onset or stop: LookupError, the turn is left out."""
        if heard_s is None:
            return None
        post, pre, log = self.post, self.pre, self.log
        i = post.index_at(self.tl.t0_ns + int(heard_s * 1e9))
        if not 0 <= i < len(post.chunk) or post.chunk[i] < 0:
            return None
        c = int(post.chunk[i])
        if log.down_lost[c] or (0 <= c + side < len(log.down_lost) and log.down_lost[c + side]):
            raise LookupError(c)
        if arrival:
            return log.down_added_ns[c] / 1e6
        starts_post = np.flatnonzero(post.chunk == c)
        starts_pre = np.flatnonzero(pre.chunk == self.pre_index[c]) if self.pre_index[c] >= 0 else []
        if not len(starts_pre):
            return None
        # the same raw sample of the chunk in both worlds (each trimmed its front by its own lead)
        return (post.time_ns(int(starts_post[0]) - int(self.lead_post[c]))
                - pre.time_ns(int(starts_pre[0]) - int(self.lead_pre[c]))) / 1e6

    def stopped(self, heard_s: float) -> float | None:
        """How much later the caller heard the agent stop than it would have without the path:
        the measured stop against the end of the same talk spurt in the path-free stream. Not
        the shift of the chunk holding the stop, nor a `clear`'s own delay: when the path has
        left the caller's playout further behind than it delays the `clear`, the clear cuts
        deeper into the reply than without the path (a stop's last short piece dropped, or a
        cut that lands in a word gap so the spurt ends a word earlier). LookupError as in `down`."""
        post, pre = self.post, self.pre
        stop_ns = self.tl.t0_ns + int(round(heard_s * 1e9))
        i = post.index_at(stop_ns)
        if not 0 <= i < len(post.chunk) or post.chunk[i] < 0 or self.down(heard_s, side=1) is None:
            return None
        c = int(post.chunk[i])
        starts_pre = np.flatnonzero(pre.chunk == self.pre_index[c])
        # the same raw sample in the path-free stream, then the end of its talk spurt there
        raw_offset = i - int(np.flatnonzero(post.chunk == c)[0]) + int(self.lead_post[c])
        j = int(starts_pre[0]) + max(0, raw_offset - int(self.lead_pre[c]))
        at = pre.time_ns(j)
        spurt = next((s for s in self.pre_spurts if s.onset_ns <= at <= s.end_ns), None)
        return None if spurt is None else (stop_ns - spurt.end_ns) / 1e6
