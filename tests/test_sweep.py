"""`turnbench sweep`: levels, the knee, harness-overloaded steps, and a real sweep against the oracle."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.load.sweep import StepResult, doubling, knee, parse_levels

REPO = Path(__file__).resolve().parents[1]


def step(c: int, p99: float | None, counted: bool = True, error_rate: float = 0.0) -> StepResult:
    return StepResult(c, 2 * c, 4 * c, f"c{c:04d}", p99, p99, p99, True, 0.0, None, 0.0, error_rate, 1.0, 1.0,
                      not counted, counted)


def test_levels():
    assert parse_levels("1, 2,4,8") == [1, 2, 4, 8]
    assert doubling(20) == [1, 2, 4, 8, 16]
    with pytest.raises(ValueError, match=r"item 2 \('x'\) is not a whole number"):
        parse_levels("1,x")
    with pytest.raises(ValueError, match="increasing"):
        parse_levels("4,2")


def test_knee_is_the_last_counted_level_before_p99_first_crosses():
    steps = [step(1, 300), step(2, 320), step(4, 900), step(8, 350)]
    k = knee(steps, 800)
    assert (k["concurrency"], k["first_over"]) == (2, 4)  # the recovery at 8 does not count: 4 already failed
    assert "first exceeded 800 ms at concurrency 4" in k["why"]


def test_overloaded_steps_never_count_toward_capacity():
    steps = [step(1, 300), step(2, 310), step(4, 320, counted=False)]
    k = knee(steps, 800)
    assert k["concurrency"] == 2 and k["not_counted"] == [4]
    assert knee([step(1, 300, error_rate=0.5)], 800)["concurrency"] is None  # errors fail a step
    assert knee([step(1, None)], 800)["concurrency"] is None


def test_sweep_against_the_oracle(tmp_path):
    sc = tmp_path / "quick.yaml"
    sc.write_text("version: 1\nname: quick\ndefaults:\n  target: oracle\nsteps:\n"
                  "  - say: bc_yeah_joe\n  - wait: reply\n  - say: bc_okay_slt\n  - wait: reply\n")
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "harness.cli", "sweep", str(sc), "--concurrency", "1,3",
                        "--calls-per-level", "1", "--out", str(out)], cwd=REPO, capture_output=True, text=True,
                       timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    (folder,) = out.iterdir()
    doc = json.loads((folder / "sweep.json").read_text())
    assert doc["schema"] == "turnbench.sweep/1" and [s["concurrency"] for s in doc["steps"]] == [1, 3]
    assert [s["turns"] for s in doc["steps"]] == [2, 6]
    assert all(abs(s["latency_p99_ms"] - 300) < 15 for s in doc["steps"])
    counted = [s["concurrency"] for s in doc["steps"] if s["counted"]]  # a busy machine may flag a step
    assert counted and doc["knee"]["concurrency"] == counted[-1] and "at least" in doc["knee"]["why"]
    assert doc["knee"]["not_counted"] == [s["concurrency"] for s in doc["steps"] if not s["counted"]]
    assert (folder / "sweep.html").read_text().count("report.html") == 2
    assert all((folder / s["folder"] / "summary.json").exists() for s in doc["steps"])
    assert f"knee: {counted[-1]} concurrent calls" in r.stdout
    # a threshold below what the oracle can do: the first step fails, the sweep stops there, exit 1
    r = subprocess.run([sys.executable, "-m", "harness.cli", "sweep", str(sc), "--concurrency", "1,2",
                        "--calls-per-level", "1", "--until-p99", "100", "--out", str(tmp_path / "o2")], cwd=REPO,
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 1, r.stdout + r.stderr
    (folder,) = (tmp_path / "o2").iterdir()
    doc = json.loads((folder / "sweep.json").read_text())
    assert len(doc["steps"]) == 1 and doc["knee"]["concurrency"] is None


@pytest.mark.slow
def test_sigterm_ends_a_sweep_keeping_the_step_in_flight():
    import signal
    import tempfile
    import time
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "sweep", "conversation", "--target", "oracle",
                                 "--concurrency", "1,2", "--calls-per-level", "1", "--out", str(out)], cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(15)  # well into the first step's only call
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 143, stderr
        (top,) = out.iterdir()
        doc = json.loads((top / "sweep.json").read_text())
        assert [s["concurrency"] for s in doc["steps"]] == [1]
        run = json.loads((top / "c0001" / "run.json").read_text())
        rows = (top / "c0001" / "turns.jsonl").read_text().splitlines()
        assert run["status"] == "interrupted" and 1 <= len(rows) < 7 and "Traceback" not in stderr
