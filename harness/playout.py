"""The receiver model: how the caller's ear plays out what the agent sent.

Received audio is played out in order, in real time, from its arrival (`play_out`), and a
`clear` drops what was not yet played, like a phone network's playout buffer.

`CatchUp` is a receiver's catch-up for continuous streams: shorten quiet frames while a backlog exists.

`play_out` applies the same receiver's rule to what it was handed late, on every transport:
audio with anything audible in it never waits behind more than `STALE_QUIET_MS` of queued chunks
that hold nothing audible (by the metrics' own detector, from a first pass). A stall (the
agent's, the network's or the harness's own host not reading the socket) that delivers a
backlog of idle noise at once then delays nothing that follows, as a jitter buffer would;
audible audio itself always queues whole.

On a stream that never stops (WebRTC sends silence too), playing every frame in order from
its arrival would keep forever any delay one late packet caused: each later frame queues
behind it. Real receivers' jitter buffers time-compress to get back; here, while a backlog exists, the
inaudible samples at the front of each frame are dropped, and audible audio is never touched.

Inaudible is judged against the audible detector the metrics use (`harness.audio.onset`): a
reply's first sample stands at least 14 dB above what precedes it and above the stream's noise
floor. So only samples more than 3 dB under floor + 14 dB (with the lowest chunk level seen so
far as the floor: the detector's floor over the whole stream can only be lower) are dropped; in a
digitally silent stream that is exact silence. Judging whole frames by their average instead (a
-48 dBFS block counted as silence) can drop the first audible sample and move the measured onset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.audio.frames import SAMPLE_NS, SAMPLE_RATE, db_to_amplitude
from harness.audio.onset import ONSET_MARGIN_DB
from harness.records.received import AudioReceived, PlayoutCleared


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
    dropped_stale: int = 0
    """Samples of quiet audio not played because audible audio arrived behind them (see play_out)."""

    def time_ns(self, index: int) -> int:
        return self.origin_ns + int(round(index * SAMPLE_NS))

    def index_at(self, t_ns: int) -> int:
        return int(round((t_ns - self.origin_ns) / SAMPLE_NS))


def play_out(audio: list[AudioReceived], origin_ns: int, clears: list[PlayoutCleared] = (),
             audible: np.ndarray | None = None) -> HeardAudio:
    """Place every chunk at max(its arrival, the end of what is already queued).

    A chunk that starts with 300 ms of silence is heard 300 ms later; a burst sent faster than
    real time queues; a `clear` drops whatever was queued but not yet heard. With `audible` (per
    chunk: does it hold anything audible), an audible chunk never waits behind more than
    `STALE_QUIET_MS` of queued chunks that hold nothing audible: the rest of those is dropped.
    """
    events = sorted([(a.arrival_ns, 0, i) for i, a in enumerate(audio)]
                    + [(c.arrival_ns, 1, -1) for c in clears])
    if audio:
        origin_ns = min(origin_ns, min(a.arrival_ns for a in audio))
    pieces: list[list[int]] = []  # [start index, chunk, length]
    end = 0
    audible_until = -1  # where the last audible chunk queued ends
    stale = int(STALE_QUIET_MS * SAMPLE_RATE / 1000)
    dropped = 0
    for t, is_clear, i in events:
        at = int(round((t - origin_ns) / SAMPLE_NS))
        if is_clear:
            if end > at:
                end = _cut(pieces, at)
                audible_until = min(audible_until, at)
            continue
        n = len(audio[i].samples)
        if audible is not None and audible[i]:
            if audible_until <= at and end - at > stale:  # only stale quiet audio queued ahead
                dropped += end - at - stale
                end = _cut(pieces, at + stale)
            audible_until = max(at, end) + n
        start = max(at, end)
        pieces.append([start, i, n])
        end = start + n
    samples = np.zeros(end, dtype=np.float32)
    chunk = np.full(end, -1, dtype=np.int32)
    for start, i, n in pieces:
        samples[start : start + n] = audio[i].samples[:n].astype(np.float32) / 32768.0
        chunk[start : start + n] = i
    arrivals = np.array([a.arrival_ns for a in audio], dtype=np.int64)
    return HeardAudio(origin_ns, samples, chunk >= 0, chunk, arrivals, dropped_stale=dropped)


def _cut(pieces: list[list[int]], at: int) -> int:
    """Drop what of the queue would play from sample `at` on; the queue's new end."""
    while pieces and pieces[-1][0] >= at:
        pieces.pop()
    if pieces and pieces[-1][0] + pieces[-1][2] > at:
        pieces[-1][2] = at - pieces[-1][0]
    return at


STALE_QUIET_MS = 5.0
"""How much queued audio that holds nothing audible a reply waits behind at most: a receiver does
not play out the idle noise or silence a stall delivered late in front of it (a jitter buffer's
depth)."""


MARGIN_DB = 3.0


def chunk_level_dbfs(samples: np.ndarray) -> float:
    x = samples.astype(np.float32)
    ms = float(np.dot(x, x)) / max(1, len(x)) / 32768.0 ** 2
    return 10.0 * np.log10(ms) if ms > 0 else -120.0


def audible_from(samples: np.ndarray, floor_dbfs: float = -120.0) -> int:
    """Index of the frame's first sample that could start anything the audible detector calls
    audible on a stream whose noise floor is at least as low as `floor_dbfs` (len: none can)."""
    peak = db_to_amplitude(floor_dbfs + ONSET_MARGIN_DB - MARGIN_DB) * 32768.0
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) >= peak)
    return int(loud[0]) if len(loud) else len(samples)


def is_quiet(samples: np.ndarray, floor_dbfs: float = -120.0) -> bool:
    """No sample of the frame could start anything audible (see `audible_from`)."""
    return audible_from(samples, floor_dbfs) == len(samples)


class CatchUp:
    """Tracks the playout queue of one stream; `admit` returns what of a frame is kept."""

    def __init__(self) -> None:
        self.heard_end_ns = 0
        self.compressed_ms = 0.0
        """Quiet audio dropped to catch up after late packets."""
        self.floor_dbfs: float | None = None
        """The lowest chunk level seen so far: the stream's noise floor, or above it."""

    def admit(self, arrival_ns: int, samples: np.ndarray) -> np.ndarray:
        if len(samples):
            level = chunk_level_dbfs(samples)
            self.floor_dbfs = level if self.floor_dbfs is None else min(self.floor_dbfs, level)
        backlog = self.heard_end_ns - arrival_ns
        if backlog > 0:  # drop what leads up to the frame's first possibly audible sample
            floor = self.floor_dbfs if self.floor_dbfs is not None else -120.0
            drop = min(audible_from(samples, floor), int(backlog / SAMPLE_NS))
            samples = samples[drop:]
            self.compressed_ms += drop / 16.0
        self.heard_end_ns = max(arrival_ns, self.heard_end_ns) + int(len(samples) * SAMPLE_NS)
        return samples

    def clear(self, at_ns: int) -> None:
        self.heard_end_ns = min(self.heard_end_ns, at_ns)
