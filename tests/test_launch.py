"""`turnbench run` without a target starts the reference agent in the background, and stops it."""

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from harness.agent.launch import agent_command

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def turnbench(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, timeout=timeout)


def test_agent_args_are_split_like_a_shell():
    cmd = agent_command("--turn semantic --llm-url 'http://127.0.0.1:8080/v1'")
    assert cmd[-4:] == ["--turn", "semantic", "--llm-url", "http://127.0.0.1:8080/v1"]
    assert cmd[cmd.index("serve") + 1] == "--reference"


def test_run_starts_benchmarks_and_stops_the_reference_agent(tmp_path):
    scenario = tmp_path / "one.yaml"
    scenario.write_text("version: 1\nname: one\ndefaults:\n  calls: 1\nsteps:\n  - say: utt_02_slt\n  - wait: reply\n")
    r = turnbench("run", scenario, "--out", tmp_path / "reports", "--no-progress",
                  "--agent-args", "--llm sim --tts sim")
    assert r.returncode == 0, r.stdout + r.stderr
    folder = next((tmp_path / "reports").iterdir())
    summary = json.loads((folder / "summary.json").read_text())
    meta = json.loads((folder / "run.json").read_text())
    assert meta["agent"]["agent"] == "reference" and "--llm sim" in meta["agent"]["args"]
    assert summary["providers"]["stt"] == {"name": "pocketsphinx", "simulated": False}
    assert summary["simulated_providers"] == ["sim-llm", "sim-tts"]
    assert any("SIMULATED" in n for n in summary["notes"])
    turns = [json.loads(line) for line in (folder / "turns.jsonl").read_text().splitlines()]
    assert len(turns) == 1 and turns[0]["latency_ms"] is not None and turns[0]["stages_ms"]["stt_final"] is not None
    assert (folder / "agent.log").exists()
    events = [json.loads(line) for line in (folder / "agent_events.jsonl").read_text().splitlines()]
    assert [e["type"] for e in events].count("turn.end") == 1 and all("call" in e and "t_ns" in e for e in events)
    assert meta["status"] == "completed"
    # the agent is gone: its port no longer answers
    port = int(meta["agent"]["url"].rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_options_the_agent_refuses_are_a_usage_error_quoting_it(tmp_path):
    r = turnbench("run", REPO / "scenarios" / "smoke.yaml", "--out", tmp_path, "--no-progress",
                  "--agent-args", "--pipeline sideways")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "sideways" in r.stderr and "agent" in r.stderr


def test_agent_args_need_the_reference_target(tmp_path):
    r = turnbench("run", REPO / "scenarios" / "smoke.yaml", "--target", "oracle", "--out", tmp_path,
                  "--agent-args", "--turn semantic")
    assert r.returncode == 2 and "--agent-args applies to --target reference only" in r.stderr
