"""The caller's microphone: clips at exact stream samples, silence elsewhere, frame by frame."""

import asyncio

import numpy as np

from harness.audio.frames import FRAME_SAMPLES
from harness.caller.mic import Microphone


async def test_frames_hold_each_clip_at_its_sample_and_silence_elsewhere():
    rng = np.random.default_rng(1)
    mic = Microphone()
    stream = np.zeros(FRAME_SAMPLES * 200, np.int16)
    for earliest in (0, 777, 5000, 5000, 20_000, 40_321):  # back to back, inside a frame, gaps
        clip = rng.integers(-20000, 20000, int(rng.integers(1, 4000))).astype(np.int16)
        start, _ = mic.schedule(clip, earliest)
        assert start >= earliest
        stream[start:start + len(clip)] = clip
    frames = len(stream) // FRAME_SAMPLES
    for n in range(frames):  # looked at before any is sent (no clip is done yet) …
        assert mic.frame_bytes(n) == stream[n * FRAME_SAMPLES:(n + 1) * FRAME_SAMPLES].tobytes(), n
    for n in range(frames):  # … and as they go out
        want = stream[n * FRAME_SAMPLES:(n + 1) * FRAME_SAMPLES]
        assert np.array_equal(mic.frame(n), want), n
        assert mic.frame_bytes(n) == want.tobytes(), n
        mic.mark_sent(n)


async def test_a_clip_is_done_when_its_last_frame_is_sent_and_new_ones_go_after_it():
    mic = Microphone()
    start, done = mic.schedule(np.ones(FRAME_SAMPLES * 2 + 1, np.int16))
    assert start == 0 and mic.next_free_sample == FRAME_SAMPLES * 2 + 1
    mic.mark_sent(1)
    assert not done.is_set()
    mic.mark_sent(2)
    assert done.is_set()
    later, _ = mic.schedule(np.ones(10, np.int16), earliest=0)  # the past is already sent
    assert later == 3 * FRAME_SAMPLES
    await asyncio.sleep(0)
