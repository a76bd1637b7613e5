"""Semantic turn detection: acoustic and lexical cues decide how much silence ends the turn.

A complete phrase ("…on Friday evening.") with falling pitch ends the turn after a short
silence; an unfinished one ("my order number is", "…and", "um") holds the floor much longer.
The lexical cue reads the streaming transcript: a small language model's probability that the
sentence ends here (`eou_smollm`, scored in its own thread as soon as a silence begins), or,
until that score is in or without llama-cpp-python, word rules. The acoustic cue is the pitch
and energy slope of the last half second of speech (`prosody.phrase_end`).
"""

from __future__ import annotations

import concurrent.futures
import math
import re

import numpy as np

from harness.agent.providers.base import ProviderUnavailable, TurnDetector
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


def lm_completeness(p_end: float) -> float:
    """0 … 1 from the language model's end-of-sentence probability (fragments here score
    ≤ 0.009, finished sentences 0.02–0.86: the scale is logarithmic)."""
    return min(1.0, max(0.0, (math.log10(max(p_end, 1e-9)) + 2.1) / 1.2))


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
    in a completeness score between `score_lo` and `score_hi` (`neutral_ms` when there is no
    transcript)."""

    name = "semantic"
    score_lo, score_hi = 0.2, 0.8

    def __init__(self, min_ms: float = 300.0, max_ms: float = 1500.0, neutral_ms: float = 600.0, lm: bool = True):
        self.min_ms, self.max_ms, self.neutral_ms = float(min_ms), float(max_ms), float(neutral_ms)
        self._lm = None
        if lm:
            try:
                from harness.agent.providers.eou_smollm import EouModel
                self._lm = EouModel()
            except ProviderUnavailable:
                pass  # word rules only; the name says so
        self.name = "semantic" if self._lm is not None else "semantic-rules"
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="eou")
        self.reset()

    def warm(self) -> None:
        if self._lm is not None:
            self._lm.p_end("hello there")

    def reset(self) -> None:
        self._tail = np.zeros(0, dtype=np.int16)
        self._voiced_since_cue = False
        self._acoustic = 0.0
        self._scores: dict[str, concurrent.futures.Future] = {}
        self.last_score: float | None = None

    def observe(self, pcm16: np.ndarray, voiced: bool, transcript: str = "") -> None:
        if voiced:
            self._tail = np.concatenate([self._tail, pcm16])[-TAIL_SAMPLES:]
            self._voiced_since_cue = True
            return
        if self._voiced_since_cue:  # silence began: read the phrase's end once
            self._acoustic = acoustic_completeness(self._tail.astype(np.float32) / 32768.0)
            self._voiced_since_cue = False
        key = " ".join(transcript.split())
        if self._lm is not None and key and key not in self._scores:
            self._scores[key] = self._pool.submit(self._lm.p_end, key)

    def lexical(self, transcript: str) -> tuple[float | None, bool]:
        """The language model's score once it is in, else the word rules; and whether the
        model's score for these words is still being computed."""
        future = self._scores.get(" ".join(transcript.split()))
        if future is not None and future.done() and future.exception() is None:
            return lm_completeness(future.result()), False
        return lexical_completeness(transcript), future is not None and not future.done()

    def needed_for(self, score: float) -> float:
        """Silence that ends a turn of this completeness."""
        frac = min(1.0, max(0.0, (score - self.score_lo) / (self.score_hi - self.score_lo)))
        return self.max_ms - frac * (self.max_ms - self.min_ms)

    def _combine(self, lexical: float | None) -> float | None:
        """The completeness score before the pitch/energy shift (None: nothing to judge by)."""
        return lexical

    def silence_needed_ms(self, transcript: str) -> float:
        lexical, pending = self.lexical(transcript)
        combined = self._combine(lexical)
        if combined is None:
            self.last_score = None
            return self.neutral_ms
        score = min(1.0, max(0.0, combined + self._acoustic))
        self.last_score = score
        needed = self.needed_for(score)
        # a slow model (a busy CPU) never makes the turn end sooner than silence alone would
        return max(needed, self.neutral_ms) if pending else needed
