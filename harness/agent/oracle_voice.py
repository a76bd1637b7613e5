"""The oracle's "voice": speech-like bursts with sample-exact edges, so ground truth is exact.

Words are harmonic complexes (a 140 Hz voice with six harmonics, all in cosine phase so the
first sample is a peak) separated by 60–150 ms gaps of digital silence, i.e. shorter than the
250 ms that ends a talk spurt. A reply always starts and ends inside a word.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from harness.audio.frames import SAMPLE_RATE, db_to_amplitude, float_to_pcm16


@lru_cache(maxsize=8)
def word_bank(level_dbfs: float, f0_hz: float = 140.0, n: int = 32, seed: int = 7) -> tuple[np.ndarray, ...]:
    """Precomputed words (150–350 ms each), so a reply costs a concatenation, not a synthesis."""
    rng = np.random.default_rng(seed)
    words = []
    for _ in range(n):
        t = np.arange(int(rng.uniform(0.15, 0.35) * SAMPLE_RATE)) / SAMPLE_RATE
        f0 = f0_hz * rng.uniform(0.9, 1.15)
        w = sum(np.cos(2 * np.pi * k * f0 * t) / k for k in range(1, 7))
        w *= db_to_amplitude(level_dbfs) / np.sqrt(np.mean(w * w))
        words.append(w.astype(np.float32))
    return tuple(words)


@lru_cache(maxsize=8)
def word_bank_pcm(level_dbfs: float) -> tuple[np.ndarray, ...]:
    """`word_bank` as PCM16 samples, converted once (a reply's PCM is then a concatenation too)."""
    return tuple(float_to_pcm16(w) for w in word_bank(level_dbfs))


def _reply_plan(duration_ms: float, rng: np.random.Generator, bank: tuple[np.ndarray, ...]) -> list[tuple[int, int]]:
    """(word index, samples) per part of a reply; word index -1 is a gap of silence."""
    total = max(1, int(duration_ms * SAMPLE_RATE / 1000))
    parts: list[tuple[int, int]] = []
    pos = 0
    while True:
        i = int(rng.integers(len(bank)))
        word = len(bank[i])
        if pos + word >= total or not parts and word >= total:
            parts.append((i, max(1, total - pos) if parts else min(word, total)))
            break
        parts.append((i, word))
        pos += word
        gap = int(rng.uniform(0.06, 0.15) * SAMPLE_RATE)
        if total - (pos + gap) < int(0.08 * SAMPLE_RATE):  # never end on a gap or a sliver of a word
            break
        parts.append((-1, gap))
        pos += gap
    return parts


def _join(plan: list[tuple[int, int]], bank: tuple[np.ndarray, ...], lead: int) -> np.ndarray:
    dtype = bank[0].dtype
    return np.concatenate([np.zeros(lead, dtype)] + [bank[i][:n] if i >= 0 else np.zeros(n, dtype) for i, n in plan])


@lru_cache(maxsize=8)
def _word_runs(level_dbfs: float) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """[start, end) of each run of non-zero samples of each word (one run each, in practice)."""
    out = []
    for w in word_bank(level_dbfs):
        edges = np.diff((w != 0).astype(np.int8), prepend=0, append=0)
        out.append((np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))
    return tuple(out)


def _runs(plan: list[tuple[int, int]], level_dbfs: float, lead: int) -> tuple[np.ndarray, np.ndarray]:
    """[start, end) of each run of non-zero samples of the joined voice, from the plan alone."""
    runs = _word_runs(level_dbfs)
    starts, ends, at = [], [], lead
    for i, n in plan:
        if i >= 0:
            a, b = runs[i]
            keep = a < n
            starts.append(a[keep] + at)
            ends.append(np.minimum(b[keep], n) + at)
        at += n
    s, e = np.concatenate(starts), np.concatenate(ends)
    join = np.flatnonzero(e[:-1] == s[1:])  # a run that ends where the next begins is one run
    return np.delete(s, join + 1), np.delete(e, join)


def synth_reply(duration_ms: float, rng: np.random.Generator, level_dbfs: float = -20.0) -> np.ndarray:
    """A float32 reply of about `duration_ms` whose first and last samples are audible."""
    bank = word_bank(float(level_dbfs))
    return _join(_reply_plan(duration_ms, rng, bank), bank, 0)


def synth_reply_pcm(duration_ms: float, rng: np.random.Generator, level_dbfs: float = -20.0, lead: int = 0,
                    with_voice: bool = False) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], np.ndarray | None]:
    """`synth_reply` after `lead` samples of silence, as the PCM16 it converts to (joined from words
    converted once: no per-reply conversion), the [start, end) sample runs where its float voice
    is non-zero (from the words' runs, found once), and with `with_voice` the float voice itself.
    Same draws from `rng` as `synth_reply`."""
    level = float(level_dbfs)
    bank = word_bank(level)
    plan = _reply_plan(duration_ms, rng, bank)
    voice = _join(plan, bank, lead) if with_voice else None
    return _join(plan, word_bank_pcm(level), lead), _runs(plan, level, lead), voice


def white_noise(n: int, level_dbfs: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian white noise with the given RMS level."""
    return (rng.standard_normal(n) * db_to_amplitude(level_dbfs)).astype(np.float32)


@lru_cache(maxsize=64)
def recorded_reply(k: int, level_dbfs: float) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Reply `k` spoken by a real voice: the k-th shipped utterance fixture (in turn), from its first
    to its last speech sample, at `level_dbfs` active speech level; and the [start, end) runs of
    what the fixtures' own audible rule calls speech in that clean recording (the truth's voice).
    For tools that only answer to speech a voice-activity model recognises (the synthetic voice
    is not speech to them)."""
    from harness.audio.fixtures import FixtureLibrary
    from harness.audio.onset import active_level_dbfs
    lib = FixtureLibrary.load()
    utterances = sorted(f for f, fx in lib.fixtures.items() if fx.kind == "utterance")
    fx = lib[utterances[k % len(utterances)]]
    a, b = int(round(fx.segments[0][0] * SAMPLE_RATE)), int(round(fx.end_of_turn_s * SAMPLE_RATE)) + 1
    voice = fx.samples[a:b].astype(np.float32) / 32768.0
    voice *= db_to_amplitude(level_dbfs - active_level_dbfs(voice))
    return voice, speech_runs(voice)


def speech_runs(voice: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[start, end) of each stretch of a clean recording that the fixtures' audible rule calls speech
    (5 ms RMS at -50 dBFS, refined to the sample)."""
    from harness.audio.onset import audible_intervals, threshold_dbfs
    ivs = audible_intervals(voice, threshold_dbfs(-120.0))
    return (np.array([iv.start for iv in ivs], dtype=np.int64), np.array([iv.end + 1 for iv in ivs], dtype=np.int64))
