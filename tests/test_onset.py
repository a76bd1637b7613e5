"""The audible detector: sample-accurate, robust to noise floors and chunking."""

import numpy as np
import pytest

from harness.audio.onset import (
    Interval,
    audible_intervals,
    merge_intervals,
    noise_floor_dbfs,
    speech_segments,
    threshold_dbfs,
)

SR = 16_000


def tone(n, amp=0.1, f=200.0):
    return amp * np.cos(2 * np.pi * f * np.arange(n) / SR)


@pytest.mark.parametrize("noise_db", [None, -60, -50])
def test_onset_and_offset_within_a_millisecond(noise_db):
    rng = np.random.default_rng(1)
    x = np.zeros(SR * 2)
    if noise_db is not None:
        x += rng.normal(0, 10 ** (noise_db / 20), x.size)
    x[7001:15001] += tone(8000)
    ivs = audible_intervals(x, threshold_dbfs(noise_floor_dbfs(x)))
    assert len(ivs) == 1
    assert abs(ivs[0].start - 7001) <= 16 and abs(ivs[0].end - 15000) <= 16


def test_noise_alone_is_never_audible():
    x = np.random.default_rng(2).normal(0, 10 ** (-50 / 20), SR * 10)
    assert audible_intervals(x, threshold_dbfs(noise_floor_dbfs(x))) == []


def test_floor_estimate_ignores_samples_that_were_not_received():
    x = np.zeros(SR)
    x[: SR // 2] = np.random.default_rng(3).normal(0, 10 ** (-50 / 20), SR // 2)
    valid = np.zeros(SR, bool)
    valid[: SR // 2] = True
    assert noise_floor_dbfs(x, valid) == pytest.approx(-50, abs=1.5)


def test_merge_bridges_short_gaps_only():
    ivs = [Interval(0, 100), Interval(150, 300), Interval(5000, 5100)]
    assert merge_intervals(ivs, 100) == [Interval(0, 300), Interval(5000, 5100)]


def test_speech_segments_split_on_long_pauses():
    x = np.zeros(SR * 3)
    x[1600:8000] = tone(6400)
    x[8000 + 800 * 16 : 8000 + 800 * 16 + 6400] = tone(6400)
    segs = speech_segments(x)
    assert len(segs) == 2
    assert (segs[1].start - segs[0].end - 1) / 16 == pytest.approx(800, abs=1)
