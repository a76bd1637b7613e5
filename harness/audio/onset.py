"""Sample-accurate "audible" detection: when does a signal become, and stop being, audible.

One definition serves every use (fixture segmentation, the agent's audio at the caller, the
oracle's ground truth): a stretch is audible where the short-term RMS over `window_ms`
reaches a threshold `margin_db` above the signal's own noise floor. Onsets and offsets are
then refined to the first/last sample inside that window whose magnitude reaches the same
threshold, so the answer does not depend on where chunk or frame boundaries fall.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.audio.frames import SAMPLE_RATE, amplitude_to_db, db_to_amplitude


@dataclass(frozen=True)
class DetectorConfig:
    """Knobs of the audible detector; the defaults are what every metric uses."""

    window_ms: float = 5.0
    margin_db: float = 14.0
    """Threshold above the noise floor: 14 dB is 5σ for white noise, so noise alone never trips it."""
    min_threshold_dbfs: float = -50.0
    """Floor of the threshold itself, for digitally silent streams."""
    max_floor_dbfs: float = -40.0
    """Cap on the floor estimate, for streams with almost no pauses to estimate it from."""
    floor_percentile: float = 5.0
    floor_block_ms: float = 10.0
    sample_rate: int = SAMPLE_RATE


DEFAULT_DETECTOR = DetectorConfig()


@dataclass(frozen=True)
class Interval:
    """A closed range of sample indices [start, end] (end is the last audible sample)."""

    start: int
    end: int


def noise_floor_dbfs(samples: np.ndarray, valid: np.ndarray | None = None,
                     cfg: DetectorConfig = DEFAULT_DETECTOR) -> float:
    """Noise floor of a signal: a low percentile of its block RMS, over blocks that hold real audio."""
    block = max(1, int(cfg.sample_rate * cfg.floor_block_ms / 1000))
    n = len(samples) // block
    if n == 0:
        return -120.0
    x = np.asarray(samples[: n * block], dtype=np.float64).reshape(n, block)
    rms = np.sqrt((x * x).mean(axis=1))
    if valid is not None:
        ok = np.asarray(valid[: n * block]).reshape(n, block).all(axis=1)
        rms = rms[ok]
    if rms.size < 5:
        return -120.0
    return float(amplitude_to_db(np.percentile(rms, cfg.floor_percentile)))


def threshold_dbfs(floor_dbfs: float, cfg: DetectorConfig = DEFAULT_DETECTOR) -> float:
    """The audible threshold for a stream with the given noise floor."""
    return max(min(floor_dbfs, cfg.max_floor_dbfs) + cfg.margin_db, cfg.min_threshold_dbfs)


def audible_intervals(samples: np.ndarray, threshold_db: float,
                      cfg: DetectorConfig = DEFAULT_DETECTOR) -> list[Interval]:
    """Every maximal audible stretch of `samples` at `threshold_db`, sample-accurate."""
    x = np.asarray(samples, dtype=np.float64)
    w = max(1, int(round(cfg.sample_rate * cfg.window_ms / 1000)))
    thr = db_to_amplitude(threshold_db)
    loud = np.abs(x) >= thr
    out: list[Interval] = []
    for run in _runs(_window_power(x, w), threshold_db):  # trailing 5 ms windows over the threshold
        r, f = run.start, run.end + 1  # first index over, first index under again
        a = max(r - w + 1, 0)
        hits = np.flatnonzero(loud[a : r + 1])
        start = a + int(hits[0]) if hits.size else int(r)
        b = max(f - w, 0)
        hits = np.flatnonzero(loud[b:f])
        end = b + int(hits[-1]) if hits.size else int(f - 1)
        start, end = int(start), int(max(start, end))
        if out and start <= out[-1].end:  # refinement can make neighbours touch
            out[-1] = Interval(out[-1].start, max(out[-1].end, end))
        else:
            out.append(Interval(start, end))
    return out


def merge_intervals(intervals: list[Interval], max_gap_samples: int) -> list[Interval]:
    """Join intervals separated by fewer than `max_gap_samples` silent samples."""
    merged: list[Interval] = []
    for iv in intervals:
        if merged and iv.start - merged[-1].end - 1 < max_gap_samples:
            merged[-1] = Interval(merged[-1].start, iv.end)
        else:
            merged.append(iv)
    return merged


def speech_segments(samples: np.ndarray, sample_rate: int = SAMPLE_RATE, min_gap_ms: float = 200.0,
                    min_speech_ms: float = 30.0, cfg: DetectorConfig = DEFAULT_DETECTOR) -> list[Interval]:
    """Speech segments of a clean recording: audible stretches, joined across short gaps.

    Used to measure fixtures; gaps shorter than `min_gap_ms` (stop closures, word gaps) do not
    split a segment, and blips shorter than `min_speech_ms` are dropped.
    """
    cfg = DetectorConfig(**{**cfg.__dict__, "sample_rate": sample_rate})
    thr = threshold_dbfs(noise_floor_dbfs(samples, cfg=cfg), cfg)
    ivs = merge_intervals(audible_intervals(samples, thr, cfg), int(sample_rate * min_gap_ms / 1000))
    min_len = int(sample_rate * min_speech_ms / 1000)
    return [iv for iv in ivs if iv.end - iv.start + 1 >= min_len]


# -- the agent's audio at the caller: the threshold follows each reply's own speech level -------

SPEECH_MARGIN_DB = 21.0
"""A reply is audible from where it comes within this much of its own active speech level."""
FLOOR_MARGIN_DB = 9.0
"""...and never at a level noise alone reaches: 9 dB over the floor (a 5 ms RMS of white noise
varies by ±0.6 dB, so the floor never crosses it)."""
ONSET_MARGIN_DB = 14.0
"""A sample starts a reply when it stands this far above what precedes it (5σ of white noise:
noise alone reaches it once in 2 million samples)."""
LOWEST_THRESHOLD_DBFS = -60.0
REPLY_RANGE_DB = 50.0
"""Sound more than this far under a reply's speech level is not the reply (codec pre-echo, the
dither of a resampler): an onset is walked back no further than that..."""
QUIET_MARGIN_DB = 6.0
"""...and its first sample stands at least this much above that level."""
FADE_RISE_DB = 6.0
"""Under the reply's range, a fade-in still rises this much over 10 ms; a floor (even a coarsely
quantised one) never does."""
PEAK_MARGIN = 2.0
"""Rising out of a floor, an onset (or an offset, falling into one) also stands at twice (6 dB
over) the floor's largest sample in 10 ms: noise that a codec quantised coarsely (G.711 at
-60 dBFS) peaks further over its RMS than white noise."""
ACTIVE_MARGIN_DB = 15.9
"""ITU-T P.56's margin: the active level is the mean power over blocks within 15.9 dB of it."""
WALK_STEP_DB = 1.0
"""Going back from the crossing, a window this much quieter than the next is still the attack (a fade-in)."""


def active_level_dbfs(samples: np.ndarray, block_ms: float = 10.0, sample_rate: int = SAMPLE_RATE) -> float:
    """Active speech level in the manner of ITU-T P.56: the mean power over the 10 ms blocks that
    lie within 15.9 dB of the result (found by fixed-point iteration from the loudest block), so
    pauses, hiss and quiet tails do not pull it down."""
    block = max(1, int(sample_rate * block_ms / 1000))
    n = len(samples) // block
    if n == 0:
        x = np.asarray(samples, dtype=np.float64)
        return float(amplitude_to_db(np.sqrt((x * x).mean()))) if x.size else -120.0
    x = np.asarray(samples[: n * block], dtype=np.float64).reshape(n, block)
    power = (x * x).mean(axis=1)
    level = float(10 * np.log10(max(power.max(), 1e-12)))
    for _ in range(50):
        keep = power >= 10 ** ((level - ACTIVE_MARGIN_DB) / 10)
        new = float(10 * np.log10(max(power[keep].mean(), 1e-12)))
        if abs(new - level) < 0.01:
            return new
        level = new
    return level


def reply_threshold_dbfs(active_dbfs: float, floor_dbfs: float, cfg: DetectorConfig = DEFAULT_DETECTOR) -> float:
    """The audible threshold for a reply at `active_dbfs` on a stream with the given floor: its
    speech level minus 21 dB, held 9 dB over the floor (capped at -40 dBFS: a floor estimated from
    a stream with no pauses is speech) and never below -60 dBFS."""
    return max(active_dbfs - SPEECH_MARGIN_DB, min(floor_dbfs, cfg.max_floor_dbfs) + FLOOR_MARGIN_DB,
               LOWEST_THRESHOLD_DBFS)


def _window_power(x: np.ndarray, w: int) -> np.ndarray:
    """Mean square over the trailing `w` samples at each index (zero-padded before the start)."""
    energy = np.concatenate(([0.0], np.cumsum(x * x)))
    idx = np.arange(x.size)
    return (energy[idx + 1] - energy[np.maximum(idx - w + 1, 0)]) / w


def _onset(x: np.ndarray, power: np.ndarray, r: int, w: int, floor_dbfs: float, quiet_dbfs: float) -> int:
    """The first sample of the sound whose 5 ms window crossed the threshold at `r`.

    Walk back a window at a time while each earlier window is quieter by at least 1 dB (still the
    attack: a fade-in) and louder than `quiet_dbfs` (50 dB under the reply's speech level) + 7 dB.
    Where what precedes the walk's last window is a floor (hiss, noise, silence: what the sound
    rises out of), the onset is the first sample from the window before on standing 14 dB above
    it and 6 dB above its largest sample; where it still rises 6 dB over 10 ms (a fade-in that
    fell under that range), the first sample 6 dB above `quiet_dbfs`. Never a sample within
    14 dB of the floor."""
    def level(i: int) -> float:
        return float(10 * np.log10(max(power[i], 1e-12))) if i >= 0 else -120.0
    edge = max(floor_dbfs, quiet_dbfs) + ONSET_MARGIN_DB / 2
    p = r
    while p - w >= 0 and level(p - w) <= level(p) - WALK_STEP_DB and level(p - w) > edge:
        p -= w
    before, earlier = level(p - w), level(p - 3 * w)
    if before > edge or before < earlier + FADE_RISE_DB:  # flat: hiss, noise, silence
        rises_out_of = max(before, level(p - 2 * w), earlier)
    else:  # still rising steeply where it fell under the reply's range: a fade-in from below it
        rises_out_of = -120.0
    a = max(p - 2 * w + 1, 0)
    peak_before = float(np.abs(x[max(a - 2 * w, 0) : a]).max()) if a > 0 else 0.0
    lowest = max(db_to_amplitude(max(rises_out_of + ONSET_MARGIN_DB, floor_dbfs + ONSET_MARGIN_DB,
                                     quiet_dbfs + QUIET_MARGIN_DB)),
                 peak_before * PEAK_MARGIN if rises_out_of > -120.0 else 0.0)
    hits = np.flatnonzero(np.abs(x[a : r + 1]) >= lowest)
    return a + int(hits[0]) if hits.size else max(r - w + 1, 0)


def _offset(x: np.ndarray, f: int, w: int, amp: float) -> int:
    """The last sample of the sound whose 5 ms window fell under the threshold at `f`: the last
    one at the threshold, and standing 14 dB above what follows (and 6 dB above its largest
    sample), so noise after an abrupt stop does not extend it."""
    after = x[f : f + 2 * w]
    lowest = amp
    if after.size:
        rms = float(np.sqrt(np.mean(after * after)))
        lowest = max(amp, rms * db_to_amplitude(ONSET_MARGIN_DB), float(np.abs(after).max()) * PEAK_MARGIN)
    b = max(f - w, 0)
    for level in (lowest, amp):
        tail = np.flatnonzero(np.abs(x[b:f]) >= level)
        if tail.size:
            return b + int(tail[-1])
    return f - 1


def reply_intervals(samples: np.ndarray, floor_dbfs: float, min_gap_samples: int,
                    cfg: DetectorConfig = DEFAULT_DETECTOR) -> list[Interval]:
    """The agent's talk spurts, each at a threshold set by its own speech level.

    Pass 1 finds candidate sound at the lowest threshold the floor allows; each candidate (sound
    with gaps under `min_gap_samples` bridged) gets its active speech level and so its threshold;
    pass 2 finds the spurts inside it at that threshold, onsets walked back through the attack."""
    x = np.asarray(samples, dtype=np.float64)
    if x.size == 0:
        return []
    w = max(1, int(round(cfg.sample_rate * cfg.window_ms / 1000)))
    power = _window_power(x, w)
    low = reply_threshold_dbfs(-120.0, floor_dbfs, cfg)
    out: list[Interval] = []
    for cand in merge_intervals(_runs(power, low), min_gap_samples):
        lo, hi = max(cand.start - w, 0), cand.end + w
        active = active_level_dbfs(x[cand.start : cand.end + 1], sample_rate=cfg.sample_rate)
        thr = reply_threshold_dbfs(active, floor_dbfs, cfg)
        quiet = active - REPLY_RANGE_DB
        amp = db_to_amplitude(thr)
        spurts = []
        for run in _runs(power[lo : hi + 1], thr):
            r, f = lo + run.start, lo + run.end + 1  # first index over, first index under again
            start = _onset(x, power, r, w, floor_dbfs, quiet)
            end = _offset(x, f, w, amp)
            if spurts and start <= spurts[-1].end:
                spurts[-1] = Interval(spurts[-1].start, max(spurts[-1].end, end))
            else:
                spurts.append(Interval(start, max(start, end)))
        out.extend(merge_intervals(spurts, min_gap_samples))
    return out


def _runs(power: np.ndarray, threshold_db: float) -> list[Interval]:
    """Maximal runs of indices whose window power reaches `threshold_db`."""
    active = power >= db_to_amplitude(threshold_db) ** 2
    if not active.any():
        return []
    edges = np.diff(active.astype(np.int8), prepend=0, append=0)
    return [Interval(int(a), int(b) - 1) for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1))]
