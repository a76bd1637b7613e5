"""The command line as a user meets it: help, run folders, exit codes, Ctrl-C."""

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from harness.cli import main
from tests.fakes.agents import http_only_server, refusing_in_body_server, refusing_offer_server, silent_ws_agent

REPO = Path(__file__).resolve().parents[1]
COMMANDS = [[], ["run"], ["validate"], ["calibrate"], ["load"], ["sweep"], ["bench"], ["bench", "capacity"], ["fixtures"],
            ["fixtures", "build"], ["fixtures", "add"],
            ["fixtures", "list"], ["agent"], ["agent", "serve"], ["scenarios"], ["scenarios", "list"],
            ["scenarios", "show"]]


def turnbench(*args, **kw):
    return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=kw.pop("cwd", REPO), timeout=kw.pop("timeout", 120), **kw)


@pytest.fixture
def quick_scenario(tmp_path):
    p = tmp_path / "quick.yaml"
    p.write_text("version: 1\nname: quick\ndefaults:\n  target: oracle\n  calls: 2\n  concurrency: 2\nsteps:\n"
                 "  - say: bc_yeah_joe\n  - wait: reply\n  - say: bc_okay_slt\n  - wait: reply\n")
    return p


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c) or "turnbench")
def test_every_command_explains_every_option(cmd):
    result = CliRunner().invoke(main, [*cmd, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    command = main
    for name in cmd:
        command = command.commands[name]
    assert command.help, f"{cmd}: no description"
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"{cmd}: option {param.opts} has no help"
            assert param.opts[0] in result.output
    if cmd == ["agent", "serve"]:
        assert "--delay-ms" in result.output and "--barge-in-stop-ms" in result.output
    if cmd == []:
        assert "Exit codes" in result.output


def test_run_writes_the_run_folder(tmp_path, quick_scenario):
    out = tmp_path / "reports"
    r = turnbench("run", quick_scenario, "--out", out, "--no-progress", "--oracle", "reply_ms=400",
                  "--oracle", "delay_ms=250")
    assert r.returncode == 0, r.stderr
    assert "response latency" in r.stdout
    (folder,) = out.iterdir()
    run = json.loads((folder / "run.json").read_text())
    summary = json.loads((folder / "summary.json").read_text())
    turns = [json.loads(line) for line in (folder / "turns.jsonl").read_text().splitlines()]
    assert run["schema"] == "turnbench.run/1" and run["status"] == "completed"
    assert run["scenario"]["sha256"] and run["fixtures"]["digest"] and run["machine"]["cores"]
    assert summary["schema"] == "turnbench.summary/2" and summary["turns"] == 4 == len(turns)
    for key in ("latency_ms", "first_byte_ms", "false_interruption_rate", "false_interruption_rate_ci95",
                "false_interruption_rate_n", "barge_in_success_rate", "backchannel_success_rate",
                "no_response_rate", "barge_in_stop_ms", "turn_detection_ms", "stages_ms", "wer", "harness"):
        assert key in summary, key
    assert set(summary["harness"]) >= {"send_lateness_ms_p50", "send_lateness_ms_p99", "loop_lag_ms_p99", "overloaded"}
    assert summary["latency_ms"]["p50"] == pytest.approx(250, abs=20)  # programmed 250 + loopback (+ VM stalls)
    fields = {"schema", "call_id", "turn", "kind", "fixture", "latency_ms", "first_byte_ms", "false_interruption",
              "false_interruption_at_ms", "barge_in_stop_ms", "barge_in_success", "backchannel_ok", "no_response",
              "transcript", "wer", "turn_detection_ms", "stages_ms", "error"}
    for t in turns:
        assert fields <= set(t) and t["schema"] == "turnbench.turn/2"
        assert t["latency_ms"] >= 0


def test_failed_threshold_is_exit_1(tmp_path, quick_scenario):
    r = turnbench("run", quick_scenario, "--out", tmp_path / "reports", "--no-progress", "--oracle", "reply_ms=400",
                  "--threshold", "latency_ms.p50<100", "--threshold", "no_response_rate<=0")
    assert r.returncode == 1, r.stderr
    assert "[FAIL] latency_ms.p50<100" in r.stdout and "[pass] no_response_rate<=0" in r.stdout
    (folder,) = (tmp_path / "reports").iterdir()
    checks = json.loads((folder / "summary.json").read_text())["thresholds"]
    assert [c["pass"] for c in checks] == [False, True]
    r = turnbench("run", quick_scenario, "--threshold", "latency_ms.p50 ~ 100", "--no-progress", "--out", tmp_path)
    assert r.returncode == 2 and "column 16" in r.stderr


def test_broken_scenario_fails_before_any_call(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: bad\nsteps:\n  - say: utt_01_joe\n  - barge_in: {fixture: nope}\n")
    r = turnbench("run", bad, "--out", tmp_path / "reports", "--no-progress")
    assert r.returncode == 2
    assert f"{bad}:5: steps[1].barge_in.fixture: unknown fixture 'nope'" in r.stderr
    assert not (tmp_path / "reports").exists()


def test_bad_target_and_oracle_options_are_usage_errors(tmp_path, quick_scenario):
    r = turnbench("run", quick_scenario, "--target", "http://example/ws", "--no-progress", "--out", tmp_path)
    assert r.returncode == 2 and "ws://" in r.stderr
    r = turnbench("run", quick_scenario, "--oracle", "burst=-1", "--no-progress", "--out", tmp_path)
    assert r.returncode == 2 and "--oracle burst" in r.stderr


def test_nothing_listening_is_exit_3(tmp_path, quick_scenario):
    r = turnbench("run", quick_scenario, "--target", "ws://127.0.0.1:9/ws", "--no-progress", "--out", tmp_path)
    assert r.returncode == 3
    assert r.stderr.strip().count("\n") == 0 and "ws://127.0.0.1:9/ws" in r.stderr


async def _run_cli(*args):
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "harness.cli", *map(str, args), cwd=REPO,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode, out.decode(), err.decode()


async def test_http_server_is_exit_3(tmp_path, quick_scenario):
    async with http_only_server() as srv:
        code, _, err = await _run_cli("run", quick_scenario, "--target", f"ws://127.0.0.1:{srv.port}/",
                                      "--no-progress", "--out", tmp_path)
    assert code == 3 and "refused the WebSocket upgrade" in err


async def test_silent_agent_is_reported_as_never_spoke(tmp_path, quick_scenario):
    async with silent_ws_agent() as srv:
        code, out, err = await _run_cli("run", quick_scenario, "--target", f"ws://127.0.0.1:{srv.port}/ws",
                                        "--no-progress", "--out", tmp_path / "reports", "--response-timeout-s", "1")
    assert code == 3 and "never spoke" in err
    (folder,) = (tmp_path / "reports").iterdir()
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["no_response_rate"] == 1.0 and summary["target_spoke"] is False
    assert any("never spoke" in n for n in summary["notes"])


def test_ctrl_c_keeps_every_measured_turn(tmp_path):
    sc = tmp_path / "long.yaml"
    sc.write_text("version: 1\nname: long\ndefaults:\n  calls: 6\n  concurrency: 1\nsteps:\n"
                  "  - say: bc_yeah_joe\n  - wait: reply\n  - say: bc_okay_slt\n  - wait: reply\n")
    out = tmp_path / "reports"
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", sc, "--out", out, "--no-progress",
                             "--oracle", "reply_ms=300"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 60
    turns = None
    while time.monotonic() < deadline:
        found = list(out.glob("*/turns.jsonl")) if out.exists() else []
        if found and len(found[0].read_text().splitlines()) >= 4:  # two calls measured
            turns = found[0]
            break
        time.sleep(0.2)
    assert turns is not None, "no turns written"
    time.sleep(1.5)  # into the third call: its first turn is measured, its second is not
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    rows = [json.loads(line) for line in turns.read_text().splitlines()]
    assert len(rows) >= 4 and len(rows) < 12
    summary = json.loads((turns.parent / "summary.json").read_text())
    run = json.loads((turns.parent / "run.json").read_text())
    assert run["status"] == "interrupted" and summary["turns"] == len(rows)
    assert all(r["latency_ms"] is not None for r in rows)


def test_agent_serve_needs_exactly_one_agent():
    for args in (["agent", "serve"], ["agent", "serve", "--oracle", "--reference"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2 and "choose one of --oracle or --reference" in result.output
    result = CliRunner().invoke(main, ["agent", "serve", "--reference", "--llm", "gpt-99"])
    assert result.exit_code == 2 and "unknown llm provider 'gpt-99'" in result.output


def test_hint_free_calibration_takes_the_bare_transport_only():
    result = CliRunner().invoke(main, ["calibrate", "--listen", "--impair", "wifi"])
    assert result.exit_code == 2 and "--listen scores the bare transport" in result.output


def test_oracle_options_validate_the_real_agent_audio_settings():
    for args, what in ((["--hiss-dbfs", "-45,10"], "hiss range"), (["--agent-rate", "11025"], "agent-rate"),
                       (["--level-cycle-dbfs", "-45,7"], "level")):
        result = CliRunner().invoke(main, ["agent", "serve", "--oracle", *args])
        assert result.exit_code == 2 and what in result.output, result.output


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["INT", "TERM"])
def test_a_signal_20_s_into_the_first_call_keeps_its_closed_turns(tmp_path, sig, code):
    out = tmp_path / "reports"
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", "conversation", "--target", "oracle",
                             "--out", out, "--no-progress"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(5)
    children = _children(proc.pid)  # the analysis worker and its forkserver
    time.sleep(15)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr and "never retrieved" not in stderr
    (folder,) = out.iterdir()
    rows = [json.loads(line) for line in (folder / "turns.jsonl").read_text().splitlines()]
    assert 2 <= len(rows) < 7 and {r["call_id"] for r in rows} == {"c0000"}  # the first call's closed turns
    assert [r["turn"] for r in rows] == list(range(len(rows)))
    run = json.loads((folder / "run.json").read_text())
    summary = json.loads((folder / "summary.json").read_text())
    assert run["status"] == "interrupted" and summary["turns"] == len(rows)
    assert any("interrupted" in n for n in summary["notes"])
    deadline = time.monotonic() + 10  # the forkserver notices its parent is gone a moment later
    while any(_alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert children and not any(_alive(p) for p in children), children


def test_an_unreachable_target_leaves_a_run_folder_that_says_why(tmp_path):
    out = tmp_path / "reports"
    r = turnbench("run", "smoke", "--target", "ws://127.0.0.1:9/ws", "--out", out, "--no-progress")
    assert r.returncode == 3, r.stderr
    (folder,) = out.iterdir()
    run = json.loads((folder / "run.json").read_text())
    assert run["status"] == "failed" and "127.0.0.1:9" in run["error"]


@pytest.mark.parametrize("args,words", [
    (["--response-timeout-s", "nan"], "'nan' is not a finite number"),
    (["--response-timeout-s", "inf"], "inf is not in the range 0.1<=x<=600"),
    (["--delay-ms", "inf"], "inf is not in the range 0<=x<=10000"),
    (["--loss", "nan"], "'nan' is not a finite number"),
    (["--jitter-ms", "1e300"], "not in the range"),
    (["--oracle", "delay_ms=1e300"], "from 0 to 600000 ms"),
    (["--oracle", "reply_ms=nan"], "finite number"),
    (["--threshold", "bogus_metric<3"], "unknown summary field 'bogus_metric'"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_every_bad_number_is_a_usage_error_naming_it(args, words):
    result = CliRunner().invoke(main, ["run", "smoke", "--target", "oracle", "--no-progress", *args])
    assert result.exit_code == 2, result.output
    assert words in result.output


@pytest.mark.parametrize("args,words", [(["--duration", "0"], "more than 0 s"),
                                        (["--arrival-rate", "nan"], "not a finite number"),
                                        (["--arrival-rate", "inf"], "not in the range")])
def test_load_refuses_a_run_that_would_never_end(args, words):
    result = CliRunner().invoke(main, ["load", "smoke", "--target", "oracle", *args])
    assert result.exit_code == 2 and words in result.output, result.output


@pytest.mark.slow
def test_a_billion_calls_cost_nothing_up_front(tmp_path):
    import resource
    out = tmp_path / "reports"
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", "smoke", "--target", "oracle",
                             "--calls", "1000000000", "--out", out, "--no-progress", "--oracle", "reply_ms=300"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = list(out.glob("*/turns.jsonl")) if out.exists() else []
        if found and len(found[0].read_text().splitlines()) >= 2:  # the first call measured
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss < 1_000_000  # KiB: well under a GB
    summary = json.loads(next(out.glob("*/summary.json")).read_text())
    assert summary["turns"] >= 2 and summary["calls"] == 1_000_000_000


def test_the_agent_token_is_sent_and_never_written(tmp_path):
    ready = tmp_path / "ready.json"
    agent = subprocess.Popen([sys.executable, "-m", "harness.cli", "agent", "serve", "--oracle", "--port", "0",
                              "--token", "s3cret-t0ken", "--ready-file", ready, "--delay-ms", "250",
                              "--reply-ms", "400"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        url = json.loads(ready.read_text())["url"]
        out = tmp_path / "reports"
        r = turnbench("run", "smoke", "--target", url, "--hints", "--out", out, "--no-progress")
        assert r.returncode == 3 and "401" in r.stderr, r.stderr  # refused before any call
        r = turnbench("run", "smoke", "--target", url, "--hints", "--out", out, "--no-progress",
                      "--agent-token", "s3cret-t0ken")
        assert r.returncode == 0, r.stderr
        env_run = turnbench("run", "smoke", "--target", url, "--hints", "--out", out, "--no-progress",
                            env={**__import__("os").environ, "TURNBENCH_AGENT_TOKEN": "s3cret-t0ken"})
        assert env_run.returncode == 0, env_run.stderr
    finally:
        agent.terminate()
        agent.wait(10)
    for f in out.rglob("*"):
        if f.is_file():
            assert b"s3cret-t0ken" not in f.read_bytes(), f
    run = json.loads(sorted(out.glob("*/run.json"))[-1].read_text())
    assert run["auth"] == "bearer token"


async def test_a_run_whose_every_call_failed_says_why_first_and_exits_3(tmp_path):
    async with refusing_offer_server() as srv:
        code, out, err = await _run_cli("run", "smoke", "--transport", "webrtc", "--target",
                                        f"http://127.0.0.1:{srv.port}/offer", "--calls", "3", "--no-progress",
                                        "--out", tmp_path / "reports")
    assert code == 3, err
    first = err.strip().splitlines()[0]
    assert first.startswith("turnbench: error: every call failed: offer answered HTTP 422 (3 of 3): {")
    assert "webrtc_id" in first and "Field required" in first and "never spoke" not in err
    assert "Traceback" not in err and "never retrieved" not in err
    (folder,) = (tmp_path / "reports").iterdir()
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["harness"]["overloaded"] is False and summary["harness"]["frames"] == 0
    assert summary["errors"] == {"offer answered HTTP 422": 3}


async def test_a_refusal_in_an_http_200_body_is_counted_as_a_refusal(tmp_path):
    async with refusing_in_body_server() as srv:
        code, out, err = await _run_cli("run", "smoke", "--transport", "webrtc", "--target",
                                        f"http://127.0.0.1:{srv.port}/offer", "--calls", "3", "--concurrency", "3",
                                        "--no-progress", "--out", tmp_path / "reports")
    assert code == 3, err
    first = err.strip().splitlines()[0]
    assert first.startswith("turnbench: error: every call failed: refused (3 of 3): concurrency_limit_reached"), err
    assert "Traceback" not in err and "never retrieved" not in err and "never spoke" not in err
    (folder,) = (tmp_path / "reports").iterdir()
    assert json.loads((folder / "summary.json").read_text())["errors"] == {"refused": 3}


def test_openai_realtime_against_the_oracle_records_no_credential(tmp_path):
    # the key from the environment and a header's value are sent, and written nowhere
    env = {**__import__("os").environ, "OPENAI_API_KEY": "sk-never-written-anywhere"}
    out = tmp_path / "reports"
    r = turnbench("run", "smoke", "--target", "oracle", "--transport", "openai-realtime", "--realtime-header",
                  "X-Api-Key=hdr-secret-value", "--out", out, "--no-progress", env=env)
    assert r.returncode == 0, r.stderr
    for f in out.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            assert b"sk-never-written-anywhere" not in data and b"hdr-secret-value" not in data, f
    run = json.loads(next(out.glob("*/run.json")).read_text())
    assert run["transport"] == "openai-realtime"
    assert run["transport_options"]["extra_headers"] == {"X-Api-Key": "***"}
    assert "--realtime-header" in run["argv"] and "X-Api-Key=***" in run["argv"]
    summary = json.loads(next(out.glob("*/summary.json")).read_text())
    assert summary["latency_ms"]["n"] >= 2 and summary["turn_detection_ms"]["n"] >= 2
