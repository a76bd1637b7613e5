"""One metric of two runs, compared: the value in each, the difference and its bootstrap interval.

Shared by `turnbench report` (delta table of a comparison) and `turnbench gate` (regressions that
are bigger than noise). Metrics are named as in summary.json: `latency_ms.p99`,
`stages_ms.llm_ttft.p50`, `false_interruption_rate`, `wer`, `barge_in_stop_ms.mean`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from harness.errors import InputError
from harness.metrics import catalog
from harness.metrics.catalog import STAGES, by_aggregate

SAMPLE_FIELDS = tuple(m.name for m in by_aggregate("percentiles"))
"""The percentile metrics of the catalogue as it ships (load results score each against the oracle)."""
MIN_RATE_N = 10
_STAT = re.compile(r"^(p\d{1,2}(?:\.\d+)?|mean)$")



def delta_metrics() -> tuple[str, ...]:
    """The metrics a comparison reports, in order (the catalogue's, then the stages)."""
    return (*(m.key(stat) for m in catalog.CATALOG for stat in m.compare), *(f"stages_ms.{s}.p50" for s in STAGES))


class MetricError(InputError):
    """A metric name that does not exist."""


@dataclass(frozen=True)
class Metric:
    name: str
    field: str
    """Turn-row field (or `stages_ms.<stage>`) the samples come from."""
    stat: str
    """`p50`…`p99.9`, `mean`, or `rate`."""
    kind: str | None = None

    @property
    def higher_is_better(self) -> bool:
        m = catalog.metric(self.name.split(".")[0])
        return bool(m and m.higher_is_better)

    @property
    def min_n(self) -> int:
        """Samples below which the statistic cannot be told from noise (P99 needs 100)."""
        if self.stat.startswith("p"):
            q = float(self.stat[1:])
            return max(1, int(round(1.0 / max(1e-9, 1 - q / 100.0)))) if q > 50 else 2
        return MIN_RATE_N if self.stat == "rate" else 2

    def samples(self, turns: list[dict]) -> np.ndarray:
        """The metric's raw samples in a run (0/1 for rates), nulls left out."""
        rows = turns if self.kind is None else [t for t in turns if t.get("kind") == self.kind]
        if self.field.startswith("stages_ms."):
            stage = self.field.split(".", 1)[1]
            vals = [(t.get("stages_ms") or {}).get(stage) for t in rows]
        else:
            vals = [t.get(self.field) for t in rows]
        return np.array([float(v) for v in vals if v is not None and not isinstance(v, str)], dtype=np.float64)

    def value(self, samples: np.ndarray) -> float | None:
        if samples.size == 0:
            return None
        return float(samples.mean()) if self.stat in ("mean", "rate") else float(np.percentile(samples, float(self.stat[1:])))

    def from_summary(self, summary: dict) -> float | None:
        """The metric as a summary.json holds it (for a baseline that is only a summary)."""
        node: object = summary
        path = self.name.split(".")
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        return float(node) if isinstance(node, (int, float)) and not isinstance(node, bool) else None


def parse_metric(name: str) -> Metric:
    """`latency_ms.p99`, `stages_ms.tts_ttfb.p50`, `false_interruption_rate`, `wer` → Metric."""
    head, _, stat = name.partition(".")
    m = catalog.metric(head)
    if m is not None and m.aggregate in ("rate", "mean") and not stat:
        return Metric(name, m.field, m.aggregate, m.kind)
    if m is not None and m.aggregate == "percentiles" and _STAT.match(stat):
        return Metric(name, m.field, stat, m.kind)
    parts = name.split(".")
    if len(parts) == 3 and parts[0] == "stages_ms" and parts[1] in STAGES and _STAT.match(parts[2]):
        return Metric(name, f"stages_ms.{parts[1]}", parts[2])
    known = ", ".join([*(f"{m.name}.p50|p90|p99|mean" if m.aggregate == "percentiles" else m.name
                         for m in catalog.CATALOG), "stages_ms.<stage>.p50"])
    raise MetricError(f"unknown metric {name!r}; known: {known}")


@dataclass(frozen=True)
class Delta:
    """Metric B − A with the 95 % bootstrap interval of that difference."""

    metric: str
    a: float | None
    b: float | None
    n_a: int
    n_b: int
    diff: float | None
    ci95: tuple[float, float] | None
    significant: bool
    """The interval excludes zero."""
    worse: bool | None
    """B is worse than A (direction-aware); None when either side is missing."""

    @property
    def pct(self) -> float | None:
        if self.diff is None or self.a is None:
            return None
        if self.a == 0:
            return 0.0 if self.diff == 0 else float("inf") * np.sign(self.diff)
        return 100.0 * self.diff / abs(self.a)


def _resample_stat(x: np.ndarray, metric: Metric, rng: np.random.Generator, resamples: int) -> np.ndarray:
    """The statistic over `resamples` bootstrap resamples of x."""
    if metric.stat == "rate":
        return rng.binomial(x.size, x.mean(), size=resamples) / x.size  # exact for 0/1 samples
    out = np.empty(resamples)
    chunk = max(1, 4_000_000 // x.size)
    for lo in range(0, resamples, chunk):
        k = min(chunk, resamples - lo)
        r = x[rng.integers(0, x.size, size=(k, x.size))]
        out[lo : lo + k] = r.mean(axis=1) if metric.stat == "mean" else np.percentile(r, float(metric.stat[1:]), axis=1)
    return out


def _delta(m: Metric, va: float | None, vb: float | None, n_a: int, n_b: int,
           resampled_diff) -> Delta:
    """The Delta of B − A; `resampled_diff(resamples)` draws the bootstrap differences."""
    if va is None or vb is None:
        return Delta(m.name, va, vb, n_a, n_b, None, None, False, None)
    diff = vb - va
    # large runs use fewer resamples (at least 200) so a 100 000-turn comparison stays a few seconds
    d = resampled_diff(int(max(200, min(2000, 40_000_000 // max(1, n_a, n_b)))))
    lo, hi = (float(v) for v in np.percentile(d, [2.5, 97.5]))
    worse = (diff < 0) if m.higher_is_better else (diff > 0)
    return Delta(m.name, va, vb, n_a, n_b, diff, (lo, hi), bool(lo > 0 or hi < 0), bool(worse) and diff != 0)


def bootstrap_delta(metric: Metric | str, a: np.ndarray, b: np.ndarray, seed: int = 0) -> Delta:
    """Compare B against A: resample each run's turns independently, difference of the statistic."""
    m = parse_metric(metric) if isinstance(metric, str) else metric
    rng = np.random.default_rng(seed)
    return _delta(m, m.value(a), m.value(b), a.size, b.size,
                  lambda k: _resample_stat(b, m, rng, k) - _resample_stat(a, m, rng, k))


def delta_against_point(metric: Metric | str, base: float | None, b: np.ndarray, seed: int = 0) -> Delta:
    """Compare a run against a baseline known only as a number (a summary.json): the interval is the
    run's own bootstrap interval shifted by the baseline (the baseline's noise is not counted)."""
    m = parse_metric(metric) if isinstance(metric, str) else metric
    rng = np.random.default_rng(seed)
    return _delta(m, base, m.value(b), 0, b.size, lambda k: _resample_stat(b, m, rng, k) - base)
