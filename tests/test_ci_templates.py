"""The CI templates in ci/: valid YAML, and their gate command works on the committed baseline."""

import json
import re
import shlex
from pathlib import Path

import yaml
from click.testing import CliRunner

from harness.cli import main

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "reports/baselines/conversation-reference"


def gate_args(text: str, run_dir: Path, tmp: Path) -> list[str]:
    cmd = re.search(r"turnbench gate (.*?)(?=\n\s*- |\n\s*artifacts:|\Z)", text, re.S).group(1)
    cmd = cmd.replace("\\\n", " ").replace('"$RUN_DIR"', str(run_dir)).replace('"$GITHUB_STEP_SUMMARY"', str(tmp / "s.md"))
    args = shlex.split(cmd)
    return [str(ROOT / a) if a.startswith("reports/") else (str(tmp / a) if a.endswith((".xml", ".md")) else a)
            for a in args]


def test_templates_gate_the_baseline_against_itself(tmp_path):
    for name in ("github-actions.yml", "gitlab-ci.yml"):
        text = (ROOT / "ci" / name).read_text()
        yaml.safe_load(text)
        assert "turnbench run scenarios/conversation.yaml" in text and "report" in text
        r = CliRunner().invoke(main, ["gate", *gate_args(text, BASELINE, tmp_path)], catch_exceptions=False)
        assert r.exit_code == 0, (name, r.output)
        assert "[pass] latency_ms.p50 regression <= 15%" in r.output
        assert "[warn] latency_ms.p99 regression <= 10%" in r.output  # 18 samples: cannot decide a P99
        assert (tmp_path / "turnbench-junit.xml").exists()


def test_the_baseline_is_a_complete_reference_run():
    r = CliRunner().invoke(main, ["report", str(BASELINE), "--format", "json"])
    summary = json.loads(r.output)["runs"][0]["summary"]
    assert summary["target"] == "reference" and summary["errors"] == {} and summary["latency_ms"]["n"] >= 18
