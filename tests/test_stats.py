"""Exact percentiles, bootstrap intervals, Wilson intervals."""

import numpy as np
import pytest

from harness.metrics.stats import bootstrap_ci, percentile_summary, rate, wilson_interval


def test_percentiles_are_exact_over_raw_samples():
    values = list(np.random.default_rng(0).lognormal(5, 0.5, 1000))
    s = percentile_summary(values)
    for q in (50, 90, 95, 99):
        assert s[f"p{q}"] == pytest.approx(np.percentile(values, q), abs=1e-3)
    assert s["n"] == 1000 and s["p99_low_n"] is False


def test_nulls_are_skipped_and_small_samples_flagged():
    s = percentile_summary([None, 10.0, 20.0, None])
    assert s["n"] == 2 and s["p99_low_n"] is True
    assert percentile_summary([None]) is None


def test_bootstrap_interval_brackets_the_estimate_and_repeats():
    v = np.random.default_rng(1).normal(300, 30, 500)
    lo, hi = bootstrap_ci(v, 50)
    assert lo <= np.median(v) <= hi and hi - lo < 15
    assert bootstrap_ci(v, 50) == [lo, hi]


def test_wilson_matches_the_textbook_value():
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-3) and hi == pytest.approx(0.9433, abs=1e-3)
    assert wilson_interval(0, 0) is None
    assert wilson_interval(0, 20)[0] == 0.0


def test_rate_counts_only_eligible_turns():
    assert rate([True, False, None, True]) == (pytest.approx(2 / 3, abs=1e-4), wilson_interval(2, 3), 3)
    assert rate([None, None]) == (None, None, 0)
