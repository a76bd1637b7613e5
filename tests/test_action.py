"""The reusable GitHub Action (action.yml): its step scripts, run locally as a runner would run
them (inputs through env, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY as files), against the oracle."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())


def step(step_id_or_name: str) -> dict:
    return next(s for s in ACTION["runs"]["steps"] if step_id_or_name in (s.get("id"), s.get("name")))


def run_step(name: str, env: dict, tmp: Path) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp / f"{name}.out"
    out.write_text("")
    bin_dir = Path(sys.executable).parent
    r = subprocess.run(["bash", "-e", "-c", step(name)["run"]], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "GITHUB_OUTPUT": str(out),
                            "GITHUB_STEP_SUMMARY": str(tmp / "summary.md"), **env})
    outputs = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
    return r, outputs


def test_the_action_declares_its_inputs_and_outputs():
    assert {"scenario", "target", "transport", "baseline", "thresholds"} <= set(ACTION["inputs"])
    assert {"run-dir", "verdict"} <= set(ACTION["outputs"])
    assert any(s.get("uses", "").startswith("actions/upload-artifact") for s in ACTION["runs"]["steps"])
    for s in ACTION["runs"]["steps"]:
        assert "${{" not in s.get("run", ""), f"{s.get('name')}: inputs go through env, not into the script"


def test_run_and_gate_steps_pass_and_fail_as_the_gate_says(tmp_path):
    r, out = run_step("run", {"TB_SCENARIO": "smoke", "TB_TARGET": "oracle", "TB_TRANSPORT": "ws-pcm",
                              "TB_THRESHOLDS": "latency_ms.p50<2000\n", "TB_EXTRA": "--oracle delay_ms=250",
                              "TB_OUT": str(tmp_path / "runs")}, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    run_dir = Path(out["run-dir"])
    assert (run_dir / "summary.json").is_file()
    gate_env = {"TB_RUN_DIR": str(run_dir), "TB_BASELINE": str(run_dir), "TB_MAX_REGRESSION": "latency_ms.p50=15\n",
                "TB_THRESHOLDS": "latency_ms.p50<2000"}
    r, out = run_step("gate", gate_env, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert out["verdict"] == "pass" and (run_dir / "gate.rc").read_text().strip() == "0"
    assert "latency_ms.p50" in (tmp_path / "summary.md").read_text()
    assert (run_dir / "junit.xml").is_file()
    r, out = run_step("gate", {**gate_env, "TB_THRESHOLDS": "latency_ms.p50<10"}, tmp_path)
    assert out["verdict"] == "fail" and (run_dir / "gate.rc").read_text().strip() == "1"
    v = subprocess.run(["bash", "-c", step("Verdict")["run"]], env={**os.environ, "TB_RUN_DIR": str(run_dir)})
    assert v.returncode == 1
