"""The oracle's voice: replies with audible edges, and their PCM joined from words converted once."""

import numpy as np

from harness.agent.oracle_voice import synth_reply, synth_reply_pcm
from harness.audio.frames import SAMPLE_RATE, float_to_pcm16


def test_a_reply_starts_and_ends_audible_and_lasts_about_as_asked():
    rng = np.random.default_rng(0)
    for ms in (40, 300, 2000, 4000):
        r = synth_reply(ms, rng)
        assert r[0] != 0 and r[-1] != 0
        assert abs(len(r) - ms * SAMPLE_RATE / 1000) <= 0.1 * SAMPLE_RATE


def test_the_pcm_and_runs_of_a_reply_are_its_voice_converted_and_its_non_zero_runs():
    for seed in range(20):
        ms, level, lead = 100 + 300 * seed, -10.0 - seed, 37 * seed
        pcm, (starts, ends), voice = synth_reply_pcm(ms, np.random.default_rng(seed), level, lead, with_voice=True)
        plain = synth_reply(ms, np.random.default_rng(seed), level)
        assert np.array_equal(voice, np.concatenate([np.zeros(lead, np.float32), plain]))
        assert pcm.dtype == np.dtype("<i2") and np.array_equal(pcm, float_to_pcm16(voice))
        edges = np.diff((voice != 0).astype(np.int8), prepend=0, append=0)
        assert np.array_equal(starts, np.flatnonzero(edges == 1)) and np.array_equal(ends, np.flatnonzero(edges == -1))
        assert len(starts) >= 1 + seed // 4  # words and gaps: the runs were not trivially one
        again, runs, none = synth_reply_pcm(ms, np.random.default_rng(seed), level, lead)
        assert none is None and np.array_equal(again, pcm) and np.array_equal(runs[0], starts)
