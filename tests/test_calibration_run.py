"""What calibration charges to an impaired path and to the loopback, on hand-built timelines whose
path-free stream is known exactly: the accounting must match what the caller really heard."""

from types import SimpleNamespace

import numpy as np
import pytest

from harness.audio.frames import SAMPLE_NS
from harness.calibration.run import _transport_delays, impairment_effects
from harness.metrics.turns import analyze_call, hear
from harness.records.impairment import ImpairmentLog
from harness.records.received import AudioReceived, PlayoutCleared
from tests.fakes.timelines import MS, FakeTimeline

A = 700 * MS       # the agent's first chunk reaches the caller without the path
D = 100 * MS       # the path's downlink delay
STALL = 30 * MS    # chunk 5 is this much later again: the real-time playout stays that far behind
START_MS = 1000    # the caller barges in here


def loud(n: int) -> np.ndarray:
    """Every sample audible, so a stop falls exactly on a chunk's last sample."""
    return np.where(np.arange(n) % 2 == 0, 8000, -8000).astype(np.int16)


def last_sample_ns(chunk_start_ns: int, n: int) -> int:
    return chunk_start_ns + round((n - 1) * SAMPLE_NS)


def impaired_call(chunks: list[tuple[int, bool]], pre_clear_ns: int, post_clear_ns: int | None = None,
                  last_chunk_late_ns: int = 0, stall_ns: int = STALL):
    """A barge-in over a reply of (length, audible) chunks that ends where the agent cut it, heard
    from A in real time without the path; the path delays each chunk by D, chunk 5 and the last
    one by more; the agent's `clear` (a no-op at `pre_clear_ns` without the path) comes at
    `post_clear_ns` with it (default: as far behind as the playout, D + stall)."""
    fake = FakeTimeline(duration_ms=3000)
    fake.turn("barge_in", [(START_MS, 1600)])
    tl = fake.tl
    log = ImpairmentLog(up_added_ns=[0] * len(tl.send_ns), up_lost=[False] * len(tl.send_ns))
    pre_start = A
    for k, (n, audible) in enumerate(chunks):
        pre = pre_start
        pre_start += round(n * SAMPLE_NS)
        post = pre + D + (stall_ns if k == 5 else 0) + (last_chunk_late_ns if k == len(chunks) - 1 else 0)
        post = max(post, tl.audio_arrival_ns[-1] if k else 0)  # order kept: none overtakes chunk 5
        tl.add_audio(AudioReceived(post, loud(n) if audible else np.zeros(n, np.int16)))
        log.inner_arrival_ns.append(pre)
        log.inner_len.append(n)
        log.inner_kept.append(k)
        log.inner_trimmed.append(0)
        log.down_added_ns.append(post - pre)
        log.down_lost.append(False)
    post_clear_ns = pre_clear_ns + D + stall_ns if post_clear_ns is None else post_clear_ns
    tl.clears.append(PlayoutCleared(post_clear_ns))
    log.clear_added_ns.append(post_clear_ns - pre_clear_ns)
    tl.impairment = log
    [r] = analyze_call(tl, fake.expected())
    assert r.barge_in_stop_ms is not None
    return tl, r


def heard_stop_ns(tl, r) -> float:
    return tl.t0_ns + r.speech_start_s * 1e9 + r.barge_in_stop_ms * 1e6


CUT_SHORT = [(320, True)] * 20 + [(112, True)]  # 400 ms of reply cut by the barge-in, the last piece short
CUT_SHORT_CLEAR = A + 407 * MS + MS // 10  # just after the last piece has played: a no-op without the path


def test_a_clear_bunched_with_the_last_piece_is_charged_to_the_path():
    # the last piece is 7 ms late, after the playout ran dry, and the clear right behind it drops it
    tl, r = impaired_call(CUT_SHORT, CUT_SHORT_CLEAR, post_clear_ns=A + 400 * MS + D + 7 * MS,
                          last_chunk_late_ns=7 * MS, stall_ns=0)
    # the caller heard the reply stop at the end of chunk 19; without the path, at the end of chunk 20
    heard = last_sample_ns(A + 19 * 20 * MS + D, 320)
    assert heard_stop_ns(tl, r) == pytest.approx(heard, abs=1000)
    path_free = last_sample_ns(A + 20 * 20 * MS, 112)
    down = impairment_effects(tl, r)["barge_in_stop_ms"]["down"]
    assert down == pytest.approx((heard - path_free) / 1e6, abs=0.01)
    # which is not the shift of the chunk the caller heard last (a per-chunk account)
    assert abs(down - D / 1e6) > 5


def test_a_stop_nothing_cut_is_the_shift_of_its_last_chunk():
    tl, r = impaired_call(CUT_SHORT, CUT_SHORT_CLEAR, last_chunk_late_ns=7 * MS, stall_ns=0,
                          post_clear_ns=CUT_SHORT_CLEAR + D + 8 * MS)
    effects = impairment_effects(tl, r)
    # the last piece waited for its own late arrival: heard D + 7 ms after the path-free one
    assert effects["barge_in_stop_ms"]["down"] == pytest.approx((D + 7 * MS) / 1e6, abs=0.01)
    assert effects["barge_in_stop_ms"]["up"] == 0.0


# words, a 40 ms gap, and 10 ms of the next word where the agent cut its reply at the barge-in
WORD_GAP = [(320, True)] * 10 + [(320, False)] * 2 + [(160, True)]
WORD_GAP_CLEAR = A + 250 * MS + MS // 10  # just after the cut piece has played: a no-op without the path


def test_a_clear_stop_is_the_playout_lag_when_it_cuts_nothing():
    tl, r = impaired_call(WORD_GAP, WORD_GAP_CLEAR)  # the clear as far behind as the playout
    assert impairment_effects(tl, r)["barge_in_stop_ms"]["down"] == pytest.approx((D + STALL) / 1e6, abs=0.01)


def test_a_clear_that_cuts_deeper_than_without_the_path_is_charged_to_the_path():
    # the path left the playout STALL behind but delays the clear only D: it reaches the caller
    # 30 ms earlier in the reply, in the word gap, so the caller hears the agent stop a word early
    tl, r = impaired_call(WORD_GAP, WORD_GAP_CLEAR, post_clear_ns=WORD_GAP_CLEAR + D)
    heard = last_sample_ns(A + 9 * 20 * MS + D + STALL, 320)
    assert heard_stop_ns(tl, r) == pytest.approx(heard, abs=1000)
    path_free = last_sample_ns(A + 12 * 20 * MS, 160)
    down = impairment_effects(tl, r)["barge_in_stop_ms"]["down"]
    assert down == pytest.approx((heard - path_free) / 1e6, abs=0.01)
    assert abs(down - D / 1e6) > 10 and abs(down - (D + STALL) / 1e6) > 10  # neither the clear's delay nor the lag


def test_a_lost_packet_just_after_the_heard_stop_leaves_the_turn_out():
    tl, r = impaired_call(WORD_GAP, WORD_GAP_CLEAR, post_clear_ns=WORD_GAP_CLEAR + D)
    tl.impairment.down_lost[10] = True  # the silence the caller's spurt ended in may have held more
    assert impairment_effects(tl, r) is None


def stamps_as_without_the_path(tl) -> tuple:
    """Both ends' stamps of a loopback that adds nothing: the oracle's model of the caller's
    playout is the path-free stream."""
    log = tl.impairment
    frames = [int(t) for t in tl.send_ns]
    return frames, list(log.inner_arrival_ns), list(log.inner_arrival_ns), [tl.clears[0].arrival_ns - log.clear_added_ns[0]]


def truth_of_stop(tl, stop_ns: int, seq: int, clear_index: int | None):
    start = tl.sample_sent_ns(tl.turns[0].first_speech_sample)
    return SimpleNamespace(start_arrival_ns=start, barge_in_stop_ms=(stop_ns - start) / 1e6, stop_chunk_seq=seq,
                           stop_clear_index=clear_index, response_chunk_seq=None, dead_air_ms=None,
                           dead_air_chunks=None)


def test_net_of_the_loopback_pairs_a_stop_only_when_the_caller_heard_its_sample():
    stop = last_sample_ns(A + 12 * 20 * MS, 160)
    tl, r = impaired_call(WORD_GAP, WORD_GAP_CLEAR)
    # the caller heard the sample the truth stops on: the stop is its chunk's heard shift
    net = _transport_delays(tl, hear(tl)[0], stamps_as_without_the_path(tl), 0, truth_of_stop(tl, stop, 12, None))
    assert net["barge_in_stop_ms"] == pytest.approx((D + STALL) / 1e6, abs=0.01)
    # cut deeper (in the word gap): it never did, and no stamped message pairs up with that stop
    tl, r = impaired_call(WORD_GAP, WORD_GAP_CLEAR, post_clear_ns=WORD_GAP_CLEAR + D)
    for by_clear in (None, 0):  # nor the clear's own delay, had the oracle's model had it cut there
        net = _transport_delays(tl, hear(tl)[0], stamps_as_without_the_path(tl), 0, truth_of_stop(tl, stop, 12, by_clear))
        assert net["barge_in_stop_ms"] is None


def test_net_of_the_loopback_pairs_a_slightly_early_cut_with_the_clear_that_made_it():
    # the oracle's clear was a no-op in its model, but reached the caller 2 ms into the last
    # piece's playout (mid-word): the caller's stop is where that clear cut, so its delay counts
    stop = last_sample_ns(A + 12 * 20 * MS, 160)
    early = WORD_GAP_CLEAR + D + STALL - 2 * MS - MS // 10
    tl, r = impaired_call(WORD_GAP, WORD_GAP_CLEAR, post_clear_ns=early)
    assert heard_stop_ns(tl, r) == pytest.approx(early - SAMPLE_NS, abs=SAMPLE_NS)
    net = _transport_delays(tl, hear(tl)[0], stamps_as_without_the_path(tl), 0, truth_of_stop(tl, stop, 12, None))
    assert net["barge_in_stop_ms"] == pytest.approx((early - WORD_GAP_CLEAR) / 1e6, abs=0.001)


@pytest.mark.parametrize("past_end", [1, 2])
def test_net_of_the_loopback_pairs_a_stop_one_wire_sample_past_the_callers_chunk(past_end):
    # Twilio's 8 kHz wire carries an odd 16 kHz sample to the next chunk: the oracle's stop chunk
    # can end a sample or two after the caller's copy of it, which the caller still heard whole
    stop = last_sample_ns(A + 12 * 20 * MS, 160 + past_end)
    tl, r = impaired_call(WORD_GAP, WORD_GAP_CLEAR)
    net = _transport_delays(tl, hear(tl)[0], stamps_as_without_the_path(tl), 0, truth_of_stop(tl, stop, 12, None))
    assert net["barge_in_stop_ms"] == pytest.approx((D + STALL) / 1e6, abs=0.01)


def test_net_of_the_loopback_leaves_out_a_stop_more_than_a_wire_sample_past_what_was_heard():
    stop = last_sample_ns(A + 12 * 20 * MS, 160 + 4)
    tl, r = impaired_call(WORD_GAP, WORD_GAP_CLEAR)
    net = _transport_delays(tl, hear(tl)[0], stamps_as_without_the_path(tl), 0, truth_of_stop(tl, stop, 12, None))
    assert net["barge_in_stop_ms"] is None


def test_a_barge_in_on_an_agent_quiet_at_the_oracle_but_still_heard_counts_its_heard_stop():
    """The agent fell quiet 10 ms before the caller spoke: the caller, a round trip behind, still
    heard it talking, and heard it stop within the threshold: a successful barge-in."""
    from harness.agent.oracle import TurnTruth
    from harness.calibration.compare import Comparison
    from harness.metrics.turns import TurnResult

    def compare(silent_for_ms: float) -> Comparison:
        truth = TurnTruth("c", 3, "barge_in", start_arrival_ns=1, eos_arrival_ns=2, latency_ms=300.0,
                          false_interruption=False, audible_at_start=False, silent_for_ms=silent_for_ms)
        measured = TurnResult("c", 3, "barge_in", "f", latency_ms=326.0, false_interruption=False,
                              barge_in_stop_ms=40.0, barge_in_success=True)
        comp = Comparison(codec_ms=26.5)
        comp.add("case", measured, truth, {}, uplink_ms={"up.barge_in_stop_ms": 35.0})
        return comp

    heard = compare(10.0)
    assert heard.classes["barge_in"] == [1, 1] and heard.mismatches == []
    gone = compare(200.0)  # quiet for longer than the caller lags: nothing was playing to barge in on
    assert gone.classes["barge_in"] == [0, 1] and gone.mismatches[0]["truth"] is None
