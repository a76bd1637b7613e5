"""The listening oracle's ears: the caller's speech found from its audio alone, by one exact rule.

A sample whose magnitude reaches `level_dbfs` is loud. Speech starts at a loud sample that
follows `hangover_ms` or more without one (or the call's start); it ends at the last loud sample
before such a silence. That end is the turn's end of speech (EOS), known `hangover_ms` later.
The rule needs no hints, so any tool's measurements can be scored against what the oracle logs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.audio.frames import SAMPLE_RATE, db_to_amplitude


@dataclass(frozen=True)
class SpeechEdge:
    """Speech started (`what` = "speech") or ended ("eos") at stream sample `sample`, held by
    the caller frame that arrived at `arrival_ns`."""

    what: str
    sample: int
    arrival_ns: int


class SpeechFinder:
    """Feed it the caller's frames in order; it returns the speech edges each one completes."""

    def __init__(self, level_dbfs: float = -50.0, hangover_ms: float = 500.0):
        self.threshold = db_to_amplitude(level_dbfs) * 32768.0
        self.hangover = int(round(hangover_ms * SAMPLE_RATE / 1000))
        self._received = 0
        self._in_speech = False
        self._last_loud = -1
        self._last_loud_arrival = 0

    def feed(self, pcm16: np.ndarray, arrival_ns: int) -> list[SpeechEdge]:
        x = np.abs(np.asarray(pcm16, dtype=np.int32))
        loud = np.flatnonzero(x >= self.threshold) + self._received
        self._received += len(x)
        out: list[SpeechEdge] = []
        if loud.size:
            starts = np.flatnonzero(np.diff(np.r_[self._last_loud, loud]) - 1 >= self.hangover)
            if not self._in_speech and (not starts.size or starts[0] != 0):
                starts = np.r_[0, starts]  # the call's first speech, within a hangover of its start
            for g in starts:  # a new stretch of speech begins at loud[g]
                if self._in_speech:
                    prev = self._last_loud if g == 0 else int(loud[g - 1])
                    out.append(SpeechEdge("eos", prev, self._last_loud_arrival if g == 0 else arrival_ns))
                out.append(SpeechEdge("speech", int(loud[g]), arrival_ns))
                self._in_speech = True
            self._last_loud, self._last_loud_arrival = int(loud[-1]), arrival_ns
        if self._in_speech and self._received - 1 - self._last_loud >= self.hangover:
            out.append(SpeechEdge("eos", self._last_loud, self._last_loud_arrival))
            self._in_speech = False
        return out
