"""The listener's model: received audio played out in order, in real time, from its arrival."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.audio.frames import SAMPLE_NS
from harness.transports.base import AudioReceived, PlayoutCleared


@dataclass
class HeardAudio:
    """Agent audio on the heard-time axis: sample i is heard at `origin_ns + i·62.5 µs`."""

    origin_ns: int
    samples: np.ndarray
    """float32; zero where nothing was playing."""
    valid: np.ndarray
    """True where a received sample was playing (used to estimate the noise floor)."""
    chunk: np.ndarray
    """Index of the received chunk each sample came from, -1 where nothing was playing."""
    arrivals_ns: np.ndarray

    def time_ns(self, index: int) -> int:
        return self.origin_ns + int(round(index * SAMPLE_NS))

    def index_at(self, t_ns: int) -> int:
        return int(round((t_ns - self.origin_ns) / SAMPLE_NS))


def play_out(audio: list[AudioReceived], origin_ns: int, clears: list[PlayoutCleared] = ()) -> HeardAudio:
    """Place every chunk at max(its arrival, the end of what is already queued).

    A chunk that starts with 300 ms of silence is heard 300 ms later; a burst sent faster than
    real time queues; a `clear` drops whatever was queued but not yet heard.
    """
    events = sorted([(a.arrival_ns, 0, i) for i, a in enumerate(audio)]
                    + [(c.arrival_ns, 1, -1) for c in clears])
    if audio:
        origin_ns = min(origin_ns, min(a.arrival_ns for a in audio))
    pieces: list[list[int]] = []  # [start index, chunk, length]
    end = 0
    for t, is_clear, i in events:
        at = int(round((t - origin_ns) / SAMPLE_NS))
        if is_clear:
            if end > at:
                while pieces and pieces[-1][0] >= at:
                    pieces.pop()
                if pieces and pieces[-1][0] + pieces[-1][2] > at:
                    pieces[-1][2] = at - pieces[-1][0]
                end = at
            continue
        start = max(at, end)
        pieces.append([start, i, len(audio[i].samples)])
        end = start + len(audio[i].samples)
    samples = np.zeros(end, dtype=np.float32)
    chunk = np.full(end, -1, dtype=np.int32)
    for start, i, n in pieces:
        samples[start : start + n] = audio[i].samples[:n].astype(np.float32) / 32768.0
        chunk[start : start + n] = i
    arrivals = np.array([a.arrival_ns for a in audio], dtype=np.int64)
    return HeardAudio(origin_ns, samples, chunk >= 0, chunk, arrivals)
