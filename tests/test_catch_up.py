"""A continuous stream's catch-up: only frames holding nothing audible are ever shortened."""

import numpy as np

from harness.audio.frames import db_to_amplitude
from harness.audio.onset import noise_floor_dbfs, reply_intervals
from harness.playout import CatchUp, audible_from, is_quiet

FRAME = 320


def first_audible_sample(x: np.ndarray) -> int:
    return reply_intervals(x, noise_floor_dbfs(x), 4000)[0].start
FRAME_NS = 20_000_000


def sine(rms_dbfs: float, n: int = FRAME) -> np.ndarray:
    amp = db_to_amplitude(rms_dbfs) * 32768 * np.sqrt(2)
    return (amp * np.sin(np.arange(n) * 2 * np.pi * 300 / 16000)).astype(np.int16)


def test_a_frame_quiet_on_average_but_with_audible_samples_is_not_quiet():
    assert is_quiet(np.zeros(FRAME, np.int16))
    # on a digitally silent stream any sound can be the first of a fade-in: nothing is quiet
    assert not is_quiet(sine(-70)) and not is_quiet(sine(-48)) and not is_quiet(sine(-20))
    # over a -50 dBFS floor, what stays 11 dB above it (14 dB less 3 of margin) is kept
    assert is_quiet(sine(-70), -50.0) and is_quiet(sine(-48), -50.0) and not is_quiet(sine(-20), -50.0)


def test_backlog_is_taken_out_of_silence_only():
    cu = CatchUp()
    kept = cu.admit(0, sine(-20, 3 * FRAME))  # 60 ms of speech at t=0
    assert len(kept) == 3 * FRAME
    late = cu.admit(FRAME_NS, np.zeros(FRAME, np.int16))  # silence arriving 40 ms before its turn
    assert len(late) == 0 and cu.compressed_ms == 20.0
    quiet_ramp = np.concatenate([np.zeros(FRAME // 2, np.int16), sine(-48, FRAME // 2)])
    kept = cu.admit(FRAME_NS, quiet_ramp)  # only what comes before its first audible sample goes
    first = audible_from(quiet_ramp)
    assert FRAME // 2 <= first < FRAME and np.array_equal(kept, quiet_ramp[first:])


def test_shortening_never_moves_the_detected_onset():
    rng = np.random.default_rng(1)
    cu = CatchUp()
    frames = [np.zeros(FRAME, np.int16) for _ in range(5)] + [sine(-48)] + [sine(-20) for _ in range(5)]
    heard = []
    for k, f in enumerate(frames):
        heard.append(cu.admit(k * FRAME_NS // 2 + int(rng.integers(0, 1000)), f))  # arrivals bunched: a backlog
    stream = np.concatenate(heard)
    original = np.concatenate(frames)
    dropped = len(original) - len(stream)
    assert dropped > 0
    # the onset sample itself always survives; dropping inaudible samples before it can shift
    # which 5 ms window first crosses the threshold by a fraction of a window, never more
    assert abs(first_audible_sample(stream) - (first_audible_sample(original) - dropped)) <= 16


def test_a_noise_floor_is_compressible_once_it_is_known():
    rng = np.random.default_rng(0)
    noise = lambda: (rng.standard_normal(FRAME) * db_to_amplitude(-50) * 32768).astype(np.int16)  # noqa: E731
    assert not is_quiet(noise())  # against a digitally silent stream's -50 dBFS threshold it is not
    cu = CatchUp()
    cu.admit(0, np.concatenate([noise() for _ in range(3)]))
    assert len(cu.admit(FRAME_NS, noise())) < FRAME  # the floor is -50 dBFS: the backlog goes
    tone = sine(-30)  # 20 dB above it: audible from its first sample past the zero crossing
    assert np.array_equal(cu.admit(FRAME_NS, tone), tone[audible_from(tone, -50.0):])
    assert audible_from(tone, -50.0) <= 3
