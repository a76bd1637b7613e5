"""The listener's playout model: arrival order, real time, queueing, clear."""

import numpy as np

from harness.audio.frames import SAMPLE_NS
from harness.playout import play_out
from harness.records.received import AudioReceived, PlayoutCleared

MS = 1_000_000


def chunk(t_ms, n=320, value=1000):
    return AudioReceived(int(t_ms * MS), np.full(n, value, np.int16))


def test_chunks_play_from_their_arrival():
    h = play_out([chunk(0), chunk(100)], 0)
    assert h.valid[:320].all() and not h.valid[320:1600].any()
    assert h.chunk[1600] == 1 and h.time_ns(1600) == 100 * MS


def test_a_burst_queues_in_order():
    h = play_out([chunk(0, 3200), chunk(0, 3200, 2000)], 0)
    assert h.chunk[3199] == 0 and h.chunk[3200] == 1
    assert h.time_ns(3200) == int(round(3200 * SAMPLE_NS))  # second chunk heard 200 ms after arrival


def test_clear_drops_what_was_not_yet_heard():
    h = play_out([chunk(0, 16000)], 0, [PlayoutCleared(250 * MS)])
    assert len(h.samples) == 4000 and h.valid.all()


def test_origin_moves_back_for_audio_before_the_first_frame():
    h = play_out([chunk(-40)], 0)
    assert h.origin_ns == -40 * MS
