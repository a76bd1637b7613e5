"""Threshold expressions: parsing, errors with positions, evaluation against a summary."""

import pytest

from harness.gate import ThresholdError, evaluate, parse_threshold

SUMMARY = {"latency_ms": {"p50": 310.0, "p99": 790.0}, "false_interruption_rate": 0.1,
           "barge_in_success_rate": None}


def test_parse_and_check():
    t = parse_threshold(" latency_ms.p99 < 800 ")
    assert t.path == ("latency_ms", "p99") and t.op == "<" and t.value == 800
    results = evaluate(SUMMARY, ["latency_ms.p99<800", "latency_ms.p50<=300", "false_interruption_rate<0.05"])
    assert [r.passed for r in results] == [True, False, False]
    assert results[1].actual == 310.0


def test_missing_metric_fails_with_a_reason():
    (r,) = evaluate(SUMMARY, ["barge_in_success_rate>=0.95"])
    assert not r.passed and "not in the summary" in r.problem


@pytest.mark.parametrize("expr,column", [("latency_ms.p99 ~ 800", 16), ("latency_ms.p99 < fast", 18),
                                         ("< 800", 1), ("latency_ms.p99", 15)])
def test_malformed_expressions_name_the_column(expr, column):
    with pytest.raises(ThresholdError) as e:
        parse_threshold(expr)
    assert e.value.position + 1 == column and f"column {column}" in str(e.value)
