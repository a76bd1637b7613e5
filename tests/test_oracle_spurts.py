"""The oracle's heard talk spurts (array code) against the plain per-chunk rule they implement."""

import numpy as np
import pytest

from harness.agent.oracle import STOP_SILENCE_NS, OracleSession, _Reply
from harness.agent.oracle_config import OracleConfig
from harness.audio.frames import SAMPLE_NS


def reference_spurts(replies, clear_sends):
    """The rule written out chunk by chunk (the oracle's first implementation)."""
    words = []
    for r in replies:
        loud = r.voice != 0
        for sent, heard, a, b, seq in r.chunks:
            seg = loud[a:b]
            cut = next((k for k, c in enumerate(clear_sends) if c >= sent), -1)
            if cut >= 0:
                seg = seg[: max(0, int((clear_sends[cut] - heard) / SAMPLE_NS))]
            if not seg.any():
                continue
            edges = np.diff(seg.astype(np.int8), prepend=0, append=0)
            for s, e in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
                by_clear = cut if cut >= 0 and e == len(seg) and len(seg) < b - a else -1
                words.append((heard + int(round(s * SAMPLE_NS)), heard + int(round((e - 1) * SAMPLE_NS)),
                              sent, seq, seq, by_clear))
    words.sort()
    spurts = []
    for on, off, sent, seq, _, by_clear in words:
        if spurts and on - spurts[-1][1] - SAMPLE_NS < STOP_SILENCE_NS:
            if off >= spurts[-1][1]:
                spurts[-1][1], spurts[-1][4], spurts[-1][5] = off, seq, by_clear
        else:
            spurts.append([on, off, sent, seq, seq, by_clear])
    return [tuple(s) for s in spurts]


def random_session(rng):
    """Replies of word-like voice (runs of sound and silence), sent in chunks that may overlap in
    time (a reply started while the last still plays), cut short by stops, with `clear`s."""
    session = OracleSession(OracleConfig(), None, None)
    t, seq = 0, 0
    for turn in range(int(rng.integers(1, 6))):
        n = int(rng.integers(800, 40_000))
        voice = np.zeros(n, np.float32)
        at = int(rng.integers(0, 400))
        while at < n:
            length = int(rng.integers(1, 6000))
            voice[at:at + length] = rng.uniform(0.1, 1.0)
            at += length + int(rng.integers(1, 8000))
        r = _Reply(turn, voice, voice, t)
        step = int(rng.choice([160, 320, 480]))
        t += int(rng.integers(0, 2_000_000_000))
        heard_end = t
        stop = n if rng.random() < 0.5 else int(rng.integers(1, n))
        for a in range(0, stop, step):
            b = min(a + step, stop)
            sent = t + int(rng.integers(0, 30_000_000))
            heard = max(sent, heard_end)
            heard_end = heard + int((b - a) * SAMPLE_NS)
            r.chunks.append((sent, heard, a, b, seq))
            seq += 1
            t = sent
            if rng.random() < 0.01:
                session.clear_sends.append(sent + int(rng.integers(0, 60_000_000)))
                t = session.clear_sends[-1]
        session._replies.append(r)
        if rng.random() < 0.3:
            t -= int(rng.integers(0, 1_000_000_000))  # the next reply overlaps this one's playout
    session.clear_sends.sort()
    return session


@pytest.mark.parametrize("seed", range(40))
def test_spurts_follow_the_per_chunk_rule(seed):
    session = random_session(np.random.default_rng(seed))
    expected = reference_spurts(session._replies, session.clear_sends)
    assert expected, "the random session should be audible"
    assert session.heard_spurts() == expected


def test_silent_and_empty_sessions_have_no_spurts():
    session = OracleSession(OracleConfig(), None, None)
    assert session.heard_spurts() == []
    quiet = np.zeros(3200, np.float32)
    r = _Reply(0, quiet, quiet, 0, chunks=[(0, 0, 0, 320, 0), (1, 20_000_000, 320, 640, 1)])
    session._replies.append(r)
    assert session.heard_spurts() == []


def test_a_clear_cuts_the_spurt_and_is_named():
    session = OracleSession(OracleConfig(), None, None)
    voice = np.ones(3200, np.float32)
    # sent all at once (a burst), heard one after another; a clear when 2.5 chunks have been heard
    chunks = [(k * 1000, k * 20_000_000, k * 320, (k + 1) * 320, k) for k in range(10)]
    session._replies.append(_Reply(0, voice, voice, 0, chunks=chunks))
    session.clear_sends.append(50_000_000)
    (on, off, sent, first_seq, last_seq, by_clear), = session.heard_spurts()
    assert (on, first_seq, last_seq, by_clear) == (0, 0, 2, 0)
    assert off == 50_000_000 - int(SAMPLE_NS)


def test_a_gap_goes_between_two_words_and_the_spans_bridge_only_short_pauses():
    import numpy as np

    from harness.agent.oracle import spans_overlap, talk_spans, with_gap
    from harness.agent.oracle_voice import synth_reply_pcm
    pcm, runs, voice = synth_reply_pcm(2000, np.random.default_rng(1), -20.0, 0, with_voice=True)
    gap = 9600  # 600 ms
    pcm2, voice2, (s2, e2) = with_gap(pcm, voice, runs, 8000, gap)
    at = int(runs[1][np.searchsorted(runs[1], 8000)])  # the end of the word that reaches 500 ms
    assert len(pcm2) == len(pcm) + gap and not pcm2[at : at + gap].any()
    assert (pcm2[: at] == pcm[: at]).all() and (pcm2[at + gap :] == pcm[at:]).all()
    edges = np.diff((voice2 != 0).astype(np.int8), prepend=0, append=0)  # the runs still say where the voice is
    assert (np.flatnonzero(edges == 1) == s2).all() and (np.flatnonzero(edges == -1) == e2).all()
    (starts, ends) = talk_spans((s2, e2))
    assert list(starts) == [s2[0], s2[np.searchsorted(s2, at + gap)]] and ends[0] == at
    assert spans_overlap((starts, ends), at - 10, at + 10) and not spans_overlap((starts, ends), at, at + gap)
    assert with_gap(pcm, None, runs, len(pcm), gap)[0] is pcm  # no word after the point: no gap (not dead air)
