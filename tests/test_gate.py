"""Threshold expressions: parsing, errors with positions, evaluation against a summary."""

import pytest

from harness.thresholds import ThresholdError, evaluate, parse_threshold

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


# -- `turnbench gate` on run folders --------------------------------------------------------------

import json  # noqa: E402
import xml.etree.ElementTree as ET  # noqa: E402

from click.testing import CliRunner  # noqa: E402

from harness.cli import main  # noqa: E402
from tests.fakes.runs import synthetic_turns, write_run  # noqa: E402


def gate(*args):
    return CliRunner().invoke(main, ["gate", *map(str, args)], catch_exceptions=False)


@pytest.fixture
def runs(tmp_path):
    base = write_run(tmp_path / "base", synthetic_turns(600, seed=1))
    same = write_run(tmp_path / "same", synthetic_turns(600, seed=2))  # noise: another draw, same distribution
    slow = write_run(tmp_path / "slow", synthetic_turns(600, seed=3, median_ms=650))  # +30 % everywhere
    return base, same, slow


def test_an_injected_regression_fails_and_names_the_metric(runs, tmp_path):
    base, _, slow = runs
    junit, md = tmp_path / "gate.xml", tmp_path / "gate.md"
    r = gate(slow, "--baseline", base, "--max-regression", "latency_ms.p99=10", "--max-regression",
             "latency_ms.p50=10", "--junit", junit, "--markdown", md)
    assert r.exit_code == 1, r.output
    assert "[FAIL] latency_ms.p99 regression <= 10%" in r.output and "beyond noise" in r.output
    cases = ET.parse(junit).getroot().findall(".//testcase")
    assert len(cases) == 2 and all(c.find("failure") is not None for c in cases)
    assert "latency_ms.p99" in cases[0].get("name")
    assert "❌ failed" in md.read_text() and "| `latency_ms.p50 regression <= 10%` | ❌ FAIL |" in md.read_text()


def test_a_run_against_itself_and_against_noise_passes(runs):
    base, same, _ = runs
    for other in (base, same):
        r = gate(other, "--baseline", base, "--max-regression", "latency_ms.p99=10",
                 "--max-regression", "false_interruption_rate=20")
        assert r.exit_code == 0, r.output
        assert "[pass] latency_ms.p99 regression" in r.output


def test_worse_but_within_noise_passes(tmp_path):
    base = write_run(tmp_path / "a", synthetic_turns(120, seed=4, sigma=0.6))
    cur = write_run(tmp_path / "b", synthetic_turns(120, seed=4, sigma=0.6, median_ms=525))  # exactly +5 %
    r = gate(cur, "--baseline", base, "--max-regression", "latency_ms.p50=1")
    assert r.exit_code == 0 and "within noise" in r.output, r.output


def test_too_small_samples_warn_instead_of_deciding(tmp_path):
    base = write_run(tmp_path / "a", synthetic_turns(40, seed=1))
    cur = write_run(tmp_path / "b", synthetic_turns(40, seed=2, median_ms=900))
    junit = tmp_path / "j.xml"
    r = gate(cur, "--baseline", base, "--junit", junit)  # default rule: latency_ms.p99=10
    assert r.exit_code == 0, r.output
    assert "[warn] latency_ms.p99" in r.output and "needs at least 100" in r.output
    assert ET.parse(junit).getroot().find(".//skipped") is not None


def test_thresholds_from_the_run_and_the_command_line(tmp_path):
    run = write_run(tmp_path / "r", synthetic_turns(100, seed=1), thresholds=["latency_ms.p50<400"])
    r = gate(run)
    assert r.exit_code == 1 and "[FAIL] latency_ms.p50<400" in r.output
    r = gate(run, "--threshold", "latency_ms.p50<5000", "--threshold", "false_interruption_rate<0.5")
    assert r.exit_code == 1 and "[pass] latency_ms.p50<5000" in r.output  # the run's own still fails
    ok = write_run(tmp_path / "ok", synthetic_turns(100, seed=1))
    assert gate(ok, "--threshold", "barge_in_success_rate>=0.9").exit_code == 0


def test_a_malformed_threshold_is_a_usage_error_with_its_position(runs):
    r = CliRunner().invoke(main, ["gate", str(runs[0]), "--threshold", "latency_ms.p99 << 800"])
    assert r.exit_code == 2 and "column 17" in r.output
    r = CliRunner().invoke(main, ["gate", str(runs[0]), "--baseline", str(runs[1]), "--max-regression", "latency.p99=5"])
    assert r.exit_code == 2 and "unknown metric 'latency.p99'" in r.output


def test_runs_of_different_scenarios_are_refused_unless_forced(tmp_path):
    a = write_run(tmp_path / "a", synthetic_turns(200, seed=1))
    b = write_run(tmp_path / "b", synthetic_turns(200, seed=2), scenario_sha="b" * 64)
    r = CliRunner().invoke(main, ["gate", str(b), "--baseline", str(a)])
    assert r.exit_code == 2 and "scenario differs" in r.output and "--force" in r.output
    assert CliRunner().invoke(main, ["gate", str(b), "--baseline", str(a), "--force"]).exit_code == 0


def test_a_summary_json_baseline_and_unreadable_input(tmp_path):
    base = write_run(tmp_path / "a", synthetic_turns(600, seed=1))
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "summary.json").write_text((base / "summary.json").read_text())
    slow = write_run(tmp_path / "s", synthetic_turns(600, seed=3, median_ms=650))
    r = gate(slow, "--baseline", lone / "summary.json", "--max-regression", "latency_ms.p50=10",
             "--max-regression", "stages_ms.llm_ttft.p50=10", "--max-regression", "false_interruption_rate=1000")
    assert r.exit_code == 1 and "[FAIL] latency_ms.p50" in r.output
    assert "[FAIL] stages_ms.llm_ttft.p50" in r.output and "[pass] false_interruption_rate" in r.output
    (slow / "turns.jsonl").write_text('{"schema": "turnbench.turn/1"}\n{broken\n{"schema": "turnbench.turn/1"}\n')
    r = CliRunner().invoke(main, ["gate", str(slow)])
    assert r.exit_code == 2 and "turns.jsonl:2: not valid JSON" in r.output


def test_a_run_that_never_heard_the_target_is_exit_3(tmp_path):
    turns = synthetic_turns(10, seed=1)
    for t in turns:
        t.update(latency_ms=None, false_interruption=None, barge_in_stop_ms=None, backchannel_ok=None,
                 error="connection refused")
    run = write_run(tmp_path / "dead", turns)
    r = CliRunner().invoke(main, ["gate", str(run)])
    assert r.exit_code == 3 and "never heard the target" in r.output
    assert json.loads((run / "summary.json").read_text())["target_spoke"] is False


def test_corrupt_result_files_and_unwritable_outputs_are_input_errors_never_a_failed_gate(tmp_path):
    run = write_run(tmp_path / "run", synthetic_turns(50, seed=1))
    ok = CliRunner().invoke(main, ["gate", str(run), "--threshold", "latency_ms.p50<2000"])
    assert ok.exit_code == 0, ok.output
    r = CliRunner().invoke(main, ["gate", str(run), "--junit", str(tmp_path / "no" / "such" / "dir" / "j.xml")])
    assert r.exit_code == 2 and "j.xml" in r.output  # unwritable output: a usage error, not a failed gate
    r = CliRunner().invoke(main, ["report", str(run), "-o", str(tmp_path / "missing-dir" / "r.html")])
    assert r.exit_code == 2 and "r.html" in r.output
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "latency_ms": {**summary["latency_ms"], "p99": "fast"}}))
    r = CliRunner().invoke(main, ["gate", str(run), "--threshold", "latency_ms.p50<2000"])
    assert r.exit_code == 2 and "summary.json: latency_ms.p99" in r.output
    (run / "summary.json").write_text(json.dumps(summary))
    (run / "turns.jsonl").write_bytes((run / "turns.jsonl").read_bytes() + b"\xff\xfe\n{}\n")
    for args in (["gate", str(run), "--threshold", "latency_ms.p50<2000"], ["report", str(run)]):
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 2 and "not UTF-8" in r.output, (args, r.output)
    (run / "turns.jsonl").write_bytes(b"")
    (run / "timelines.jsonl").write_bytes(b"\xff\xfe garbage\n")
    r = CliRunner().invoke(main, ["report", str(run)])
    assert r.exit_code == 0, r.output  # a corrupt picture file costs pictures, not the report
