"""`turnbench load` end to end: Locust master + workers on loopback, open loop against a slow agent."""

import csv
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.load.results import failure_reason, merged_health

REPO = Path(__file__).resolve().parents[1]
# never import locust here: it monkey-patches the whole test process with gevent
pytestmark = pytest.mark.skipif(importlib.util.find_spec("locust") is None, reason="needs the load extra")


def turnbench(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, timeout=timeout)


def scenario(tmp_path, extra: str = "") -> Path:
    p = tmp_path / "quick.yaml"
    p.write_text(f"version: 1\nname: quick\ndefaults:\n  target: oracle\n{extra}steps:\n"
                 "  - say: bc_yeah_joe\n  - wait: reply\n  - say: bc_okay_slt\n  - wait: reply\n")
    return p


def folder_of(out: Path) -> Path:
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    return folder


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def locust_aggregate(folder: Path) -> dict:
    with (folder / "locust_stats.csv").open() as f:
        return next(r for r in csv.DictReader(f) if r["Name"] == "Aggregated")


def test_master_and_two_workers_write_one_exact_turns_file(tmp_path):
    out = tmp_path / "out"
    r = turnbench("load", scenario(tmp_path), "--processes", 2, "--users", 4, "--think-s", 0.2, "--duration", "6s",
                  "--out", out)
    assert r.returncode == 0, r.stdout + r.stderr
    folder = folder_of(out)
    turns, calls = jsonl(folder / "turns.jsonl"), jsonl(folder / "calls.jsonl")
    summary = json.loads((folder / "summary.json").read_text())
    assert len(calls) >= 4 and all(c["error"] is None and c["turns"] == 2 for c in calls)
    assert len(turns) == 2 * len(calls) == summary["turns"]  # every finished call's every turn, nothing lost
    assert summary["load"]["turns_lost"] == 0 and summary["load"]["calls_abandoned"] == 0
    assert {t["call_id"].split("-")[0] for t in turns} == {"w0", "w1"}  # both workers' engines placed calls
    assert len({t["call_id"] for t in turns}) == len(calls)
    assert set(summary["engines"]) == {"w0", "w1"}
    assert all(abs(t["latency_ms"] - 300) < 15 for t in turns)  # exact numbers, not Locust's rounded ones
    err = summary["measurement_error_ms"]["latency_ms"]  # scored against the oracle's own account
    assert err["n"] == len(turns) and err["median_abs_error_ms"] < 3
    assert int(locust_aggregate(folder)["Request Count"]) == len(turns)  # each turn is one Locust request
    assert (folder / "report.html").exists() and (folder / "locust.html").exists()


def test_open_loop_keeps_the_offered_rate_against_a_slow_agent_and_reports_failures(tmp_path):
    out = tmp_path / "out"
    sc = scenario(tmp_path, "  response_timeout_s: 1.0\n")
    r = turnbench("load", sc, "--arrival-rate", 3, "--arrivals", "fixed", "--duration", "3s",
                  "--oracle", "delay_ms=2000", "--oracle", "reply_ms=500", "--out", out)
    assert r.returncode == 0, r.stdout + r.stderr
    folder = folder_of(out)
    summary = json.loads((folder / "summary.json").read_text())
    a = summary["arrivals"]
    assert a["mode"] == "open" and a["offered"] == a["started"] == 9 and a["dropped"] == 0
    assert a["start_lag_ms"]["p99"] < 50  # calls started on schedule though each lasted seconds
    starts = sorted({t["call_id"]: t["call_started_s"] for t in jsonl(folder / "turns.jsonl")}.values())
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert all(abs(g - 1 / 3) < 0.05 for g in gaps), gaps
    assert summary["no_response_rate"] == 1.0
    agg = locust_aggregate(folder)
    assert int(agg["Failure Count"]) == int(agg["Request Count"]) == summary["turns"] == 18
    with (folder / "locust_failures.csv").open() as f:
        assert {row["Error"] for row in csv.DictReader(f)} == {"TurnFailed('no response')"}


def test_worker_without_a_master_and_bad_options_fail_clearly(tmp_path):
    r = turnbench("load", scenario(tmp_path), "--master", "--processes", 2)
    assert r.returncode == 2 and "--worker" in r.stderr
    r = turnbench("load", scenario(tmp_path), "--duration", "soon")
    assert r.returncode == 2 and "90s, 5m" in r.stderr


def test_failure_reasons():
    base = {"error": None, "false_interruption": False, "barge_in_success": None, "backchannel_ok": None,
            "no_response": False}
    assert failure_reason(base) is None
    assert failure_reason({**base, "false_interruption": True, "false_interruption_at_ms": 812.0}) == \
        "false interruption at 812.0 ms"
    assert failure_reason({**base, "barge_in_success": False, "barge_in_stop_ms": 640.0}) == \
        "barge-in failed: stopped after 640 ms"
    assert failure_reason({**base, "no_response": True}) == "no response"
    assert failure_reason({**base, "error": "connection lost"}) == "call error: connection lost"


def test_one_saturated_engine_makes_the_run_untrustworthy():
    ok = {"node": "w0", "send_lateness_ms_p50": 0.7, "send_lateness_ms_p99": 1.5, "loop_lag_ms_p99": 2.0,
          "overloaded_why": [], "frames": 100}
    bad = {**ok, "node": "w1", "send_lateness_ms_p99": 9.0, "overloaded_why": ["send lateness p99 9.0 ms > 5 ms"]}
    assert merged_health({"w0": ok})["overloaded"] is False
    h = merged_health({"w0": ok, "w1": bad})
    assert h["overloaded"] is True and h["send_lateness_ms_p99"] == 9.0 and h["overloaded_why"] == [
        "w1: send lateness p99 9.0 ms > 5 ms"]
    assert merged_health({"w0": ok, "w1": None})["engines"] == 1
    assert merged_health({})["overloaded"] is True


def test_the_cli_never_imports_gevent():
    """Only Locust's own processes may be patched: turnbench's must not even import it."""
    code = ("import sys, harness.cli, harness.load.engine, harness.load.results; "
            "from click.testing import CliRunner; CliRunner().invoke(harness.cli.main, ['load', '--help']); "
            "assert 'gevent' not in sys.modules and 'locust' not in sys.modules, 'patched'")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_progress_reads_only_what_was_appended(tmp_path):
    from harness.load.results import TurnsTail
    path = tmp_path / "turns.jsonl"
    tail = TurnsTail(path, keep=3)
    assert tail.poll() == (0, None)
    path.write_text('{"latency_ms": 100}\n{"latency_ms": null}\n{"latency_ms": 3')
    assert tail.poll() == (2, 100.0)  # the half-written third line waits
    with path.open("a") as f:
        f.write('00}\n{"latency_ms": 500}\n{"latency_ms": 700}\n')
    assert tail.poll() == (5, 500.0)  # median of the last 3 latencies: 300, 500, 700


@pytest.mark.slow
def test_sigterm_ends_a_load_run_with_its_turns_kept_and_the_folder_interrupted(tmp_path):
    import signal
    import time
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "load", str(scenario(tmp_path)), "--users", "2",
                             "--think-s", "0.2", "--duration", "120s", "--out", str(out)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:  # until some calls are measured
        found = list(out.glob("*/turns.jsonl")) if out.exists() else []
        if found and len(found[0].read_text().splitlines()) >= 4:
            break
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stdout[-2000:] + stderr[-2000:]
    folder = folder_of(out)
    run = json.loads((folder / "run.json").read_text())
    summary = json.loads((folder / "summary.json").read_text())
    assert run["status"] == "interrupted"
    assert summary["turns"] >= 4 and summary["turns"] == len(jsonl(folder / "turns.jsonl"))
    assert "Traceback" not in stderr


@pytest.mark.slow
def test_a_master_with_a_relative_scenario_path_and_a_worker_elsewhere(tmp_path):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "out"
    master = subprocess.Popen([sys.executable, "-m", "harness.cli", "load", "scenarios/smoke.yaml", "--target",
                               "oracle", "--master", "--expect-workers", "1", "--master-port", str(port), "--users", "1",
                               "--duration", "4s", "--out", str(out)], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    worker = subprocess.Popen([sys.executable, "-m", "harness.cli", "load", "--worker", "--master-port", str(port)],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = master.communicate(timeout=120)
    finally:
        worker.kill()
        worker.communicate()
    assert master.returncode == 0, stdout[-2000:] + stderr[-2000:]
    folder = folder_of(out)
    assert json.loads((folder / "run.json").read_text())["status"] == "completed"
    assert json.loads((folder / "summary.json").read_text())["turns"] >= 2
