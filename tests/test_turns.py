"""The metric definitions of docs/metrics.md, on hand-built timelines with known answers."""

import pytest

from harness.metrics.turns import AnalysisSettings, analyze_call, word_error_rate
from tests.fakes.timelines import MS, FakeTimeline


def analyze(f: FakeTimeline, **kw):
    return analyze_call(f.tl, f.expected(), AnalysisSettings(**kw))


def test_plain_response_latency_and_first_byte():
    f = FakeTimeline()
    t = f.turn("utterance", [(200, 2200)])
    f.agent(f.eos_ns(t) + 300 * MS, 1500)
    (r,) = analyze(f)
    assert r.latency_ms == pytest.approx(300, abs=0.2)
    assert r.first_byte_ms == pytest.approx(300, abs=0.2)
    assert r.false_interruption is False and r.no_response is False
    assert r.barge_in_stop_ms is None and r.backchannel_ok is None  # not applicable: null


def test_leading_silence_inside_a_chunk_is_heard_later():
    f = FakeTimeline()
    t = f.turn("utterance", [(200, 2200)])
    f.agent(f.eos_ns(t) + 100 * MS, 1500, chunk_ms=400, lead_ms=300)
    (r,) = analyze(f)
    assert r.latency_ms == pytest.approx(400, abs=0.2)  # heard when played out
    assert r.first_byte_ms == pytest.approx(100, abs=0.2)  # the chunk itself arrived earlier


def test_noise_floor_does_not_move_the_onset():
    f = FakeTimeline(noise_dbfs=-50)
    t = f.turn("utterance", [(200, 2200)])
    f.idle(0, f.eos_ns(t) + 50 * MS)  # the agent streams its -50 dBFS line while idle
    f.agent(f.eos_ns(t) + 50 * MS, 600, lead_ms=250)  # then a reply whose first chunk is 250 ms of noise
    (r,) = analyze(f)
    assert r.latency_ms == pytest.approx(300, abs=1.0)


def test_a_quiet_faded_reply_with_nothing_sent_before_it_is_timed_from_its_first_sample():
    # -27 dBFS, a 50 ms fade-in, nothing at all between replies: the floor has no quiet audio to be
    # estimated from; the previous detector (threshold at the -40 dBFS floor cap + 14) was ~6 ms late
    f = FakeTimeline()
    turns = [f.turn("utterance", [(200 + 4000 * k, 2200 + 4000 * k)]) for k in range(3)]
    for t in turns:
        f.agent(f.eos_ns(t) + 300 * MS, 1200, level_dbfs=-27, fade_ms=50)
    for r in analyze(f):
        assert r.latency_ms == pytest.approx(300, abs=1.0)
        assert r.first_byte_ms == pytest.approx(300, abs=0.2)  # the reply's first chunk, not its second


@pytest.mark.parametrize("level", [-45, -36, -26, -16, -6])
def test_reply_level_does_not_move_the_onset(level):
    f = FakeTimeline()
    t = f.turn("utterance", [(200, 2200)])
    f.agent(f.eos_ns(t) + 400 * MS, 1500, level_dbfs=level, fade_ms=60)
    (r,) = analyze(f)
    assert r.latency_ms == pytest.approx(400, abs=1.0)


@pytest.mark.parametrize("hiss", [-60, -50, -45])
def test_hiss_before_the_first_word_is_not_the_reply(hiss):
    f = FakeTimeline()
    t = f.turn("utterance", [(200, 2200)])
    f.agent(f.eos_ns(t) + 200 * MS, 1500, lead_ms=150, hiss_dbfs=hiss)  # 150 ms of TTS hiss, then words
    (r,) = analyze(f)
    assert r.latency_ms == pytest.approx(350, abs=1.0)
    assert r.first_byte_ms == pytest.approx(340, abs=0.2)  # the 20 ms chunk holding the first word


def test_a_stall_that_delivers_idle_noise_late_does_not_delay_the_reply():
    # the line's -50 dBFS floor streams in real time; its last 120 ms before the reply arrive at
    # once (a stall), right ahead of the reply: a jitter buffer does not play that backlog first
    f = FakeTimeline(noise_dbfs=-50)
    t = f.turn("utterance", [(200, 2200)])
    reply_at = f.eos_ns(t) + 400 * MS
    f.idle(0, reply_at - 120 * MS)
    for _ in range(6):  # the withheld frames, all arriving 0.1 ms before the reply
        f.idle(reply_at - 100_000, reply_at - 100_000 + 20 * MS)
    f.agent(reply_at, 800)
    (r,) = analyze(f)
    assert r.latency_ms == pytest.approx(400 + 5 - 0.1, abs=1.0)  # at most 5 ms of stale noise ahead of it


def test_burst_faster_than_real_time_queues_behind_earlier_audio():
    f = FakeTimeline()
    a = f.turn("utterance", [(200, 2000)])
    b = f.turn("utterance", [(5000, 6500)])
    f.agent(f.eos_ns(a) + 200 * MS, 2500, burst=True, chunk_ms=100)  # whole reply arrives at once
    (ra, rb) = analyze(f)
    assert ra.latency_ms == pytest.approx(200, abs=0.2)
    assert rb.latency_ms is None and rb.no_response is True


def test_response_during_a_pause_is_a_false_interruption():
    f = FakeTimeline()
    t = f.turn("paused", [(200, 1400), (2400, 3600)])
    f.agent(1700 * MS, 500)  # answers 300 ms into the 1000 ms pause, stops before the caller resumes
    f.agent(f.eos_ns(t) + 350 * MS, 1000)
    (r,) = analyze(f)
    assert r.false_interruption is True
    assert r.false_interruption_at_ms == pytest.approx(1700 - f.start_ns(t) / MS, abs=0.2)
    assert r.latency_ms == pytest.approx(350, abs=0.2)


def test_agent_already_playing_when_the_turn_began_is_not_a_false_interruption():
    f = FakeTimeline()
    f.turn("utterance", [(200, 1000)])
    t = f.turn("utterance", [(2000, 3000)])
    f.agent(1300 * MS, 1200)  # reply to turn 0 still playing at 2000 ms, ends 2500 ms
    (_, r) = analyze(f)
    assert r.false_interruption is False


def test_agent_talking_over_eos_gives_no_latency_never_a_negative_one():
    f = FakeTimeline()
    t = f.turn("paused", [(200, 1400), (2400, 3600)])
    f.agent(1700 * MS, 3000)  # starts in the pause and talks straight through the end of speech
    (r,) = analyze(f)
    assert r.false_interruption is True
    assert r.latency_ms is None and r.first_byte_ms is None
    assert r.no_response is False


def test_response_after_the_timeout_is_no_response():
    f = FakeTimeline(duration_ms=20_000)
    t = f.turn("utterance", [(200, 2200)])
    f.agent(f.eos_ns(t) + 9_000 * MS, 500)
    (r,) = analyze(f, response_timeout_s=8.0)
    assert r.no_response is True and r.latency_ms is None
    (r,) = analyze(f, response_timeout_s=10.0)
    assert r.latency_ms == pytest.approx(9000, abs=0.2)


def test_barge_in_during_the_agents_first_100_ms():
    f = FakeTimeline()
    q = f.turn("utterance", [(200, 2000)])
    onset = f.eos_ns(q) + 300 * MS
    t = f.turn("barge_in", [(onset / MS + 60, onset / MS + 1500)])  # caller cuts in 60 ms after onset
    start = f.start_ns(t)
    f.agent(onset, (start - onset) / MS + 150)  # the agent stops 150 ms after the interruption began
    f.agent(f.eos_ns(t) + 400 * MS, 800)
    (_, r) = analyze(f)
    assert r.barge_in_stop_ms == pytest.approx(150, abs=1.0)
    assert r.barge_in_success is True
    assert r.latency_ms == pytest.approx(400, abs=0.2)
    assert r.false_interruption is False


def test_barge_in_that_the_agent_ignores_fails():
    f = FakeTimeline()
    q = f.turn("utterance", [(200, 2000)])
    onset = f.eos_ns(q) + 300 * MS
    t = f.turn("barge_in", [(onset / MS + 500, onset / MS + 1500)])
    f.agent(onset, 2500)  # keeps talking ~2 s after the caller started
    (_, r) = analyze(f)
    assert r.barge_in_stop_ms > 1500
    assert r.barge_in_success is False


def test_barge_in_when_the_agent_is_silent_is_not_eligible():
    f = FakeTimeline()
    f.turn("utterance", [(200, 2000)])
    f.turn("barge_in", [(4000, 5000)])
    (_, r) = analyze(f)
    assert r.barge_in_stop_ms is None and r.barge_in_success is None


def test_backchannel_followed_by_real_speech():
    f = FakeTimeline()
    q = f.turn("utterance", [(200, 2000)])
    onset = f.eos_ns(q) + 300 * MS
    f.agent(onset, 3000)  # long reply
    bc = f.turn("backchannel", [(onset / MS + 1000, onset / MS + 1350)])
    nxt = f.turn("utterance", [(onset / MS + 4000, onset / MS + 5500)])
    f.agent(f.eos_ns(nxt) + 250 * MS, 800)
    (_, rb, rn) = analyze(f)
    assert rb.backchannel_ok is True
    assert rb.latency_ms is None and rb.no_response is None and rb.false_interruption is None
    assert rn.latency_ms == pytest.approx(250, abs=0.2)
    assert rn.false_interruption is False


def test_backchannel_that_stops_the_agent_fails():
    f = FakeTimeline()
    q = f.turn("utterance", [(200, 2000)])
    onset = f.eos_ns(q) + 300 * MS
    bc = f.turn("backchannel", [(onset / MS + 1000, onset / MS + 1350)])
    f.agent(onset, (f.start_ns(bc) - onset) / MS + 120)  # stops 120 ms into the "yeah"
    (_, rb) = analyze(f)
    assert rb.backchannel_ok is False


def test_agent_events_fill_turn_detection_stages_and_wer():
    f = FakeTimeline()
    t = f.turn("utterance", [(200, 2200)], text="What time does the pharmacy close today?")
    eos = f.eos_ns(t)
    f.event(eos - 50 * MS, type="turn.end")  # before EOS: not this turn's decision
    f.event(eos + 120 * MS, type="turn.end")
    f.event(eos + 180 * MS, type="stt.final", text="what time does the pharmacy close", duration_ms=60)
    f.event(eos + 300 * MS, type="llm.first_token", duration_ms=110)
    f.event(eos + 360 * MS, type="tts.first_audio", duration_ms=50)
    f.agent(eos + 400 * MS, 800)
    (r,) = analyze(f)
    assert r.turn_detection_ms == pytest.approx(120, abs=0.01)
    assert r.transcript == "what time does the pharmacy close"
    assert r.wer == pytest.approx(1 / 7, abs=1e-3)
    # consecutive intervals by arrival: 120 | 60 | 120 | 60 | the rest until the reply is heard
    assert r.stages_ms == {"turn_detection": 120, "stt_final": 60, "llm_ttft": 120, "tts_ttfb": 60,
                           "transport": pytest.approx(40, abs=0.3)}
    assert sum(r.stages_ms.values()) == pytest.approx(r.latency_ms, abs=0.01)
    assert r.stages_reported_ms == {"stt_final": 60, "llm_ttft": 110, "tts_ttfb": 50}  # the agent's own
    assert r.stages_overlap_ms is None and r.stages_merged is None


def test_stages_add_up_when_work_overlaps_and_events_are_missing():
    # a batch-style agent: STT final before the turn decision, durations that overlap, no LLM event
    f = FakeTimeline()
    t = f.turn("utterance", [(200, 2200)])
    eos = f.eos_ns(t)
    f.event(eos + 500 * MS, type="stt.final", text="x", duration_ms=450)
    f.event(eos + 700 * MS, type="turn.end")
    f.event(eos + 900 * MS, type="tts.first_audio", duration_ms=600)
    f.agent(eos + 1000 * MS, 800)
    (r,) = analyze(f)
    assert r.stages_ms == {"turn_detection": 700, "stt_final": 0, "llm_ttft": None, "tts_ttfb": 200,
                           "transport": pytest.approx(100, abs=0.3)}
    assert sum(v for v in r.stages_ms.values() if v is not None) == pytest.approx(r.latency_ms, abs=0.01)
    assert r.stages_overlap_ms == {"stt_final": 200}  # came 200 ms before the turn was decided
    assert r.stages_merged == {"tts_ttfb": ["llm_ttft"]}


def test_a_stage_event_after_the_reply_was_heard_never_makes_transport_negative():
    f = FakeTimeline()
    t = f.turn("utterance", [(200, 2200)])
    eos = f.eos_ns(t)
    f.event(eos + 100 * MS, type="turn.end")
    f.agent(eos + 300 * MS, 800)
    f.event(eos + 350 * MS, type="tts.first_audio")  # the event trailed its own audio
    (r,) = analyze(f)
    assert r.stages_ms["tts_ttfb"] == pytest.approx(200, abs=0.3) and r.stages_ms["transport"] == 0
    assert r.stages_overlap_ms == {"tts_ttfb": pytest.approx(-50, abs=0.3)}


def test_no_events_means_null_trace_fields():
    f = FakeTimeline()
    t = f.turn("utterance", [(200, 2200)])
    f.agent(f.eos_ns(t) + 300 * MS, 500)
    (r,) = analyze(f)
    assert r.turn_detection_ms is None and r.stages_ms is None and r.transcript is None and r.wer is None


def test_turn_never_reached_carries_the_call_error():
    f = FakeTimeline()
    f.turn("utterance", [(200, 2200)])
    f.tl.error = "target closed the connection 2.5 s into the call"
    results = analyze_call(f.tl, f.expected() + [(1, "utterance", "later")], AnalysisSettings())
    assert results[1].error.startswith("target closed") and results[1].latency_ms is None


def test_word_error_rate_ignores_case_and_punctuation():
    assert word_error_rate("Hello, World!", "hello world") == 0.0
    assert word_error_rate("a b c d", "a x c") == 0.5


def _edges(audio, at_ns):
    """Heard time of an agent clip's first and last audible (non-zero) sample, paced from `at_ns`."""
    import numpy as np
    nz = np.flatnonzero(audio)
    return at_ns + int(nz[0] * 1e9 / 16000), at_ns + int(nz[-1] * 1e9 / 16000)


def test_dead_air_is_the_longest_silence_inside_the_reply_before_the_next_turn():
    f = FakeTimeline()
    t = f.turn("utterance", [(200, 2200)])
    f.turn("utterance", [(9000, 10500)])
    at1 = f.eos_ns(t) + 300 * MS
    filler = f.agent(at1, 500)                       # "let me check …"
    at2 = at1 + 500 * MS + 900 * MS                   # … 900 ms of nothing …
    content = f.agent(at2, 1500)
    at3 = at2 + 1500 * MS + 400 * MS                  # … and a shorter wait
    f.agent(at3, 800)
    r, _ = analyze(f)
    end1 = _edges(filler, at1)[1]
    onset2 = _edges(content, at2)[0]
    assert r.latency_ms == pytest.approx((_edges(filler, at1)[0] - f.eos_ns(t)) / MS, abs=0.2)  # the filler counts
    assert r.dead_air_ms == pytest.approx((onset2 - end1) / MS, abs=0.2)  # the longest of the two gaps
    assert r.dead_air_start_s == pytest.approx(end1 / 1e9, abs=0.0002)
    assert 900 <= r.dead_air_ms < 1000


def test_a_reply_in_one_spurt_has_no_dead_air_and_no_reply_has_none_at_all():
    f = FakeTimeline()
    t = f.turn("utterance", [(200, 2200)])
    f.turn("utterance", [(6000, 7500)])
    at = f.eos_ns(t) + 300 * MS
    f.agent(at, 600)
    f.agent(at + 600 * MS + 150 * MS, 600)  # a 150 ms pause is inside a talk spurt, not dead air
    r1, r2 = analyze(f)
    assert r1.dead_air_ms == 0.0 and r1.dead_air_start_s is None
    assert r2.dead_air_ms is None and r2.no_response  # nothing answered: no dead air to speak of


def test_agent_audio_after_the_callers_next_turn_began_is_not_part_of_the_reply():
    f = FakeTimeline()
    t = f.turn("utterance", [(200, 2200)])
    nxt = f.turn("utterance", [(4000, 5500)])
    at = f.eos_ns(t) + 300 * MS
    f.agent(at, 600)
    f.agent(f.start_ns(nxt) + 200 * MS, 600)  # talks again once the caller has moved on
    r, _ = analyze(f)
    assert r.dead_air_ms == 0.0
