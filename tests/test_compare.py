"""Comparing one metric of two runs: values, direction, and whether the difference beats noise."""

import numpy as np
import pytest

from harness.metrics.compare import MetricError, bootstrap_delta, delta_against_point, parse_metric
from tests.fakes.runs import synthetic_turns


def lat(turns):
    return parse_metric("latency_ms.p50").samples(turns)


def test_a_real_shift_is_significant_and_worse():
    a, b = synthetic_turns(500, seed=1), synthetic_turns(500, seed=2, median_ms=600)
    d = bootstrap_delta("latency_ms.p50", lat(a), lat(b))
    assert d.significant and d.worse and 60 < d.diff < 140 and d.ci95[0] > 0
    assert 12 < d.pct < 28


def test_the_same_distribution_is_noise():
    a, b = synthetic_turns(500, seed=1), synthetic_turns(500, seed=2)
    d = bootstrap_delta("latency_ms.p90", lat(a), lat(b))
    assert not d.significant and d.ci95[0] < 0 < d.ci95[1]


def test_rates_and_direction():
    m = parse_metric("barge_in_success_rate")
    assert m.higher_is_better and m.stat == "rate"
    good, bad = np.ones(200), np.r_[np.ones(140), np.zeros(60)]
    d = bootstrap_delta(m, good, bad)
    assert d.worse and d.significant and d.diff == pytest.approx(-0.3)
    better = bootstrap_delta(m, bad, good)
    assert not better.worse and better.significant


def test_paused_rate_reads_only_paused_turns():
    turns = synthetic_turns(100, seed=3, fi_rate=0.0)
    for t in turns:
        if t["kind"] == "paused":
            t["false_interruption"] = True
    assert parse_metric("false_interruption_rate_paused").samples(turns).mean() == 1.0
    assert parse_metric("false_interruption_rate").samples(turns).mean() < 0.5


def test_stage_metrics_and_min_samples():
    turns = synthetic_turns(50, seed=4)
    m = parse_metric("stages_ms.llm_ttft.p50")
    assert m.samples(turns).size == 40 and m.min_n == 2
    assert parse_metric("latency_ms.p99").min_n == 100 and parse_metric("latency_ms.p90").min_n == 10


def test_against_a_point_baseline():
    b = synthetic_turns(400, seed=5, median_ms=500)
    assert delta_against_point("latency_ms.p50", 400.0, lat(b)).significant
    assert not delta_against_point("latency_ms.p50", 500.0, lat(b)).significant


@pytest.mark.parametrize("name", ["latency_ms.p", "latency.p50", "stages_ms.stt.p50", "false_interrupt_rate"])
def test_unknown_metrics_say_what_exists(name):
    with pytest.raises(MetricError, match="known: .*latency_ms"):
        parse_metric(name)
