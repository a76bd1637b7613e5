"""Semantic turn detection: acoustic and lexical cues decide how much silence ends the turn.

A complete phrase ("…on Friday evening.") with falling pitch ends the turn after a short
silence; an unfinished one ("my order number is", "…and", "um") holds the floor much longer.
The lexical cue reads the streaming transcript; the acoustic cue is the pitch and energy slope
of the last half second of speech (`prosody.phrase_end`).
"""

from __future__ import annotations

import math
import re

import numpy as np

from harness.agent.providers.base import TurnDetector
from harness.agent.providers.prosody import phrase_end
from harness.audio.frames import SAMPLE_RATE

# a phrase that ends on one of these is not finished
CONTINUERS = frozenset("""
and but or so because since while although though if then than that which who whose whom where when
to of for in on at by with from into onto about like as
the a an this these those my your our their his her its some any every each no
is are was were am be been being do does did have has had can could will would shall should may might must
i we you they he she it i'm i'd i'll i've we're you're they're it's there's
um uh er erm hmm ah well mean just very really
""".split())
# a phrase that ends on one of these may well be finished
QUESTION_START = frozenset("what when where who whom why how which is are was were do does did can could will would "
                           "should may shall have has".split())
TAIL_SAMPLES = SAMPLE_RATE // 2


def lexical_completeness(transcript: str) -> float | None:
    """0 (surely unfinished) … 1 (surely complete) from the words alone; None with no words."""
    words = re.findall(r"[a-z']+", transcript.lower())
    if not words:
        return None
    if words[-1] in CONTINUERS:
        return 0.1
    if len(words) == 1:  # "yes", "no", "Friday": often complete, often a hesitation
        return 0.55
    return 0.75


def acoustic_completeness(tail: np.ndarray) -> float:
    """A shift of the lexical score from the phrase's end: falling pitch and energy say "done"."""
    pe = phrase_end(tail)
    shift = 0.0
    if not math.isnan(pe.pitch_slope_st_per_s):
        if pe.pitch_slope_st_per_s <= -8:
            shift += 0.1
        elif pe.pitch_slope_st_per_s >= 3:
            shift -= 0.1
    if not math.isnan(pe.energy_drop_db) and pe.energy_drop_db >= 6:
        shift += 0.05
    return shift


class SemanticTurn(TurnDetector):
    """Silence needed = `max_ms` for an unfinished phrase … `min_ms` for a complete one, linear
    in a completeness score between 0.2 and 0.8 (`neutral_ms` when there is no transcript)."""

    name = "semantic"

    def __init__(self, min_ms: float = 300.0, max_ms: float = 1500.0, neutral_ms: float = 600.0):
        self.min_ms, self.max_ms, self.neutral_ms = float(min_ms), float(max_ms), float(neutral_ms)
        self.reset()

    def reset(self) -> None:
        self._tail = np.zeros(0, dtype=np.int16)
        self._voiced_since_cue = False
        self._acoustic = 0.0
        self.last_score: float | None = None

    def observe(self, pcm16: np.ndarray, voiced: bool) -> None:
        if voiced:
            self._tail = np.concatenate([self._tail, pcm16])[-TAIL_SAMPLES:]
            self._voiced_since_cue = True
        elif self._voiced_since_cue:  # silence began: read the phrase's end once
            self._acoustic = acoustic_completeness(self._tail.astype(np.float32) / 32768.0)
            self._voiced_since_cue = False

    def silence_needed_ms(self, transcript: str) -> float:
        lexical = lexical_completeness(transcript)
        if lexical is None:
            self.last_score = None
            return self.neutral_ms
        score = min(1.0, max(0.0, lexical + self._acoustic))
        self.last_score = score
        frac = min(1.0, max(0.0, (score - 0.2) / 0.6))
        return self.max_ms - frac * (self.max_ms - self.min_ms)
