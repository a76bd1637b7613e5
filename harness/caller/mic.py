"""A live microphone: scheduled clips at exact stream positions, silence everywhere else."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np

from harness.audio.frames import FRAME_SAMPLES

SILENT_FRAME = bytes(2 * FRAME_SAMPLES)


@dataclass
class _Clip:
    start: int
    samples: np.ndarray
    done: asyncio.Event
    end: int = 0
    pcm: bytes = b""
    """The samples as PCM16LE bytes (converted once: a frame is a slice of them)."""

    def __post_init__(self) -> None:
        self.end = self.start + len(self.samples)
        self.pcm = self.samples.astype("<i2").tobytes()


class Microphone:
    """Produces frame n of the caller's stream; clips are placed by stream sample index, each after
    the ones before it (so `_clips` is in stream order)."""

    def __init__(self) -> None:
        self._clips: list[_Clip] = []
        self.frames_sent = 0

    @property
    def next_free_sample(self) -> int:
        """The earliest sample a new clip can start at: after unsent frames' start and queued clips."""
        tail = max((c.end for c in self._clips), default=0)
        return max(self.frames_sent * FRAME_SAMPLES, tail)

    def schedule(self, samples: np.ndarray, earliest: int | None = None) -> tuple[int, asyncio.Event]:
        """Queue a clip at `earliest` (or the first free sample); returns its start and a done event."""
        start = self.next_free_sample if earliest is None else max(earliest, self.next_free_sample)
        clip = _Clip(start, np.asarray(samples, dtype=np.int16), asyncio.Event())
        self._clips.append(clip)
        return start, clip.done

    def frame(self, n: int) -> np.ndarray:
        """Samples [n·320, (n+1)·320) of the stream."""
        lo, hi = n * FRAME_SAMPLES, (n + 1) * FRAME_SAMPLES
        out = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        for c in self._clips:
            if c.start < hi and c.end > lo:
                a, b = max(lo, c.start), min(hi, c.end)
                out[a - lo : b - lo] = c.samples[a - c.start : b - c.start]
        return out

    def frame_bytes(self, n: int) -> bytes:
        """Frame n as PCM16LE bytes: silence, or a slice of one clip's bytes, without building an
        array (every caller sends one each 20 ms, and nearly all are one of those two)."""
        clips = self._clips
        if not clips:
            return SILENT_FRAME
        lo, hi = n * FRAME_SAMPLES, (n + 1) * FRAME_SAMPLES
        c = clips[0]
        if c.end <= lo:  # a frame looked at before the ones before it were sent
            c = next((c for c in clips if c.end > lo), None)
            if c is None:
                return SILENT_FRAME
        if c.start <= lo and c.end >= hi:
            return c.pcm[2 * (lo - c.start):2 * (hi - c.start)]
        if c.start >= hi:
            return SILENT_FRAME
        return self.frame(n).tobytes()

    def mark_sent(self, n: int) -> None:
        """Frame n went out: clips that ended inside it are done."""
        self.frames_sent = n + 1
        edge = self.frames_sent * FRAME_SAMPLES
        clips = self._clips
        while clips and clips[0].end <= edge:
            clips.pop(0).done.set()
