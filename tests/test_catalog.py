"""The metric catalogue: one declaration makes a metric part of the summary, the CLI table, the
comparison and gate grammar and the report's headline (with its turn field, that is all)."""

from __future__ import annotations

import numpy as np
import pytest

from harness.cli.common import summary_table
from harness.load.sweep import headline_values
from harness.metrics import catalog
from harness.metrics.catalog import CATALOG, MetricDef
from harness.metrics.compare import bootstrap_delta, delta_metrics, parse_metric
from harness.metrics.summary import summarize
from harness.report.headline import headline
from harness.thresholds import check_regression, evaluate, parse_regression


def rows(n: int = 40) -> list[dict]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        out.append({"call_id": f"c{i // 4}", "turn": i % 4, "kind": "paused" if i % 4 == 1 else "utterance",
                    "latency_ms": float(300 + rng.normal(0, 20)), "first_byte_ms": 290.0,
                    "false_interruption": i % 10 == 1, "barge_in_success": None, "backchannel_ok": None,
                    "no_response": False, "barge_in_stop_ms": None, "turn_detection_ms": 100.0, "wer": 0.1,
                    "stages_ms": None, "dead_air_ms": float(50 + 10 * (i % 5))})
    return out


@pytest.fixture
def dead_air(monkeypatch):
    m = MetricDef("dead_air_ms", "dead_air_ms", "percentiles", "dead air (ms)", seed=21, headline=("p99",),
                  compare=("p99",), budget={"p99": "<=400"})
    monkeypatch.setattr(catalog, "CATALOG", (*CATALOG, m))
    return m


def test_the_catalogue_names_each_metric_once_with_a_known_aggregate():
    names = [m.name for m in CATALOG]
    assert len(names) == len(set(names))
    assert {m.aggregate for m in CATALOG} <= {"percentiles", "rate", "mean"}
    assert len({m.seed for m in CATALOG if m.aggregate == "percentiles"}) == len(catalog.by_aggregate("percentiles"))


def test_one_declaration_makes_a_metric_everywhere(dead_air):
    s = summarize(rows(), calls=10, target="t", transport="ws-pcm", scenario="s", harness={})
    assert s["dead_air_ms"]["n"] == 40 and s["dead_air_ms"]["p50"] == 70.0
    assert "dead air (ms)" in summary_table(s)
    assert parse_metric("dead_air_ms.p99").field == "dead_air_ms"
    assert "dead_air_ms.p99" in delta_metrics()
    (check,) = evaluate(s, ["dead_air_ms.p99<500"])
    assert check.passed and check.actual == s["dead_air_ms"]["p99"]
    assert headline_values(s)["dead_air_ms.p99"] == s["dead_air_ms"]["p99"]  # a sweep's steps carry it
    row = next(r for r in headline(s) if r.key == "dead_air_ms.p99")
    assert row.source == "budget" and row.status == "pass"
    worse = [{**r, "dead_air_ms": r["dead_air_ms"] * 2} for r in rows()]
    d = bootstrap_delta("dead_air_ms.p50", np.array([r["dead_air_ms"] for r in rows()]),
                        np.array([r["dead_air_ms"] for r in worse]))
    assert d.worse and d.significant
    assert check_regression(parse_regression("dead_air_ms.p50=10"), worse, rows()).status == "fail"


def test_rates_and_means_follow_their_declaration():
    s = summarize(rows(), calls=10, target="t", transport="ws-pcm", scenario="s", harness={})
    assert s["false_interruption_rate"] == pytest.approx(0.1) and s["false_interruption_rate_n"] == 40
    assert s["false_interruption_rate_paused"] == pytest.approx(0.2)  # paused turns 1 and 21 of 1, 5, …, 37
    assert s["false_interruption_rate_paused_n"] == 10
    assert s["wer"] == 0.1 and s["barge_in_success_rate"] is None and s["barge_in_success_rate_n"] == 0
    assert parse_metric("barge_in_success_rate").higher_is_better
    assert not parse_metric("latency_ms.p99").higher_is_better


def test_the_summary_model_types_every_catalogue_metric_and_names_a_bad_field(tmp_path):
    from harness.errors import InputError
    from harness.metrics.summary_model import validate_summary
    s = summarize(rows(), calls=10, target="t", transport="ws-pcm", scenario="s", harness={})
    typed = validate_summary(s, "summary.json")
    assert typed.latency_ms.n == 40 and typed.false_interruption_rate == pytest.approx(0.1)
    with pytest.raises(InputError, match=r"summary.json: latency_ms.p99: .*number"):
        validate_summary({**s, "latency_ms": {**s["latency_ms"], "p99": "fast"}}, "summary.json")
    with pytest.raises(InputError, match=r"summary.json: false_interruption_rate: .*less than or equal to 1"):
        validate_summary({**s, "false_interruption_rate": 3}, "summary.json")
    with pytest.raises(InputError, match=r"summary.json: schema"):
        validate_summary({**s, "schema": "other/1"}, "summary.json")


def test_each_kind_of_error_keeps_its_first_message():
    s = summarize(rows(4), calls=3, target="t", transport="twilio", scenario="s", harness={},
                  call_errors=["protocol error: malformed JSON (x): '{not json' (and 4 more)",
                               "protocol error: binary frame", "connection lost: reset"])
    assert s["errors"] == {"protocol error": 2, "connection lost": 1}
    assert s["error_examples"]["protocol error"].startswith("protocol error: malformed JSON")
