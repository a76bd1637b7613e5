"""A receiver's catch-up for continuous streams: shorten quiet frames while a backlog exists.

On a stream that never stops (WebRTC sends silence too), playing every frame in order from
its arrival would keep forever any delay one late packet caused: each later frame queues
behind it. Real receivers' jitter buffers time-compress to get back; here quiet frames (no 5 ms
block at -45 dBFS, below anything the metrics call audible) are shortened by the backlog, and
audible audio is never touched.
"""

from __future__ import annotations

import numpy as np

from harness.audio.frames import SAMPLE_NS, db_to_amplitude

QUIET_DBFS = -45.0
_BLOCK = 80


def is_quiet(samples: np.ndarray) -> bool:
    n = len(samples) // _BLOCK
    if not n:
        return True
    x = samples[: n * _BLOCK].astype(np.float32).reshape(n, _BLOCK) / 32768.0
    return bool((x * x).mean(axis=1).max() < db_to_amplitude(QUIET_DBFS) ** 2)


class CatchUp:
    """Tracks the playout queue of one stream; `admit` returns what of a frame is kept."""

    def __init__(self) -> None:
        self.heard_end_ns = 0
        self.compressed_ms = 0.0
        """Quiet audio dropped to catch up after late packets."""

    def admit(self, arrival_ns: int, samples: np.ndarray) -> np.ndarray:
        backlog = self.heard_end_ns - arrival_ns
        if backlog > 0 and is_quiet(samples):
            drop = min(len(samples), int(backlog / SAMPLE_NS))
            samples = samples[drop:]
            self.compressed_ms += drop / 16.0
        self.heard_end_ns = max(arrival_ns, self.heard_end_ns) + int(len(samples) * SAMPLE_NS)
        return samples

    def clear(self, at_ns: int) -> None:
        self.heard_end_ns = min(self.heard_end_ns, at_ns)
