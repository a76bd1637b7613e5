"""Exact percentiles with bootstrap intervals, and Wilson intervals for rates."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

PERCENTILES = (50, 90, 95, 99)
LOW_N_FOR_P99 = 100
BOOTSTRAP_RESAMPLES = 2000


def _r(x: float) -> float:
    return round(float(x), 3)


def bootstrap_ci(values: np.ndarray, q: float, resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = 0, level: float = 0.95) -> list[float]:
    """Percentile-bootstrap interval of the q-th percentile (seeded: same data, same interval)."""
    if values.size == 1:
        return [_r(values[0]), _r(values[0])]
    rng = np.random.default_rng(seed)
    stats = np.empty(resamples)
    chunk = max(1, 2_000_000 // values.size)
    for lo in range(0, resamples, chunk):
        n = min(chunk, resamples - lo)
        idx = rng.integers(0, values.size, size=(n, values.size))
        stats[lo : lo + n] = np.percentile(values[idx], q, axis=1)
    a = (1 - level) / 2 * 100
    return [_r(np.percentile(stats, a)), _r(np.percentile(stats, 100 - a))]


def percentile_summary(values: Iterable[float | None], seed: int = 0) -> dict | None:
    """{n, p50, p90, p95, p99, mean, max, ci95: {p50, p99}, p99_low_n} over the non-null samples."""
    arr = np.array([v for v in values if v is not None], dtype=np.float64)
    if arr.size == 0:
        return None
    p = {f"p{q}": _r(np.percentile(arr, q)) for q in PERCENTILES}
    return {"n": int(arr.size), **p, "mean": _r(arr.mean()), "max": _r(arr.max()), "min": _r(arr.min()),
            "ci95": {"p50": bootstrap_ci(arr, 50, seed=seed), "p99": bootstrap_ci(arr, 99, seed=seed + 1)},
            "p99_low_n": bool(arr.size < LOW_N_FOR_P99)}


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> list[float] | None:
    """Wilson score interval of a binomial proportion (sensible at 0 % and 100 %)."""
    if n == 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


def rate(flags: Iterable[bool | None]) -> tuple[float | None, list[float] | None, int]:
    """(rate, Wilson 95 % interval, eligible n) over the non-null flags."""
    vals = [bool(f) for f in flags if f is not None]
    n = len(vals)
    if n == 0:
        return None, None, 0
    k = sum(vals)
    return round(k / n, 4), wilson_interval(k, n), n
