"""turnbench against voice agents it did not write: Pipecat and FastRTC, from PyPI, on loopback,
over each transport they offer (WebRTC and Twilio Media Streams). Opt-in: their environments
come from `bash scripts/setup.sh interop`; run with `python -m pytest -m interop`."""

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VENVS = REPO / ".venv-interop"
REPLY = REPO / "audio_fixtures" / "utt_04_awb.wav"
SCENARIO = """version: 1
name: interop
defaults: {calls: 2, concurrency: 2, response_timeout_s: 6}
steps:
  - say: utt_01_joe
  - wait: reply
  - say: utt_02_slt
  - wait: reply
  - say: utt_07_slt
  - barge_in: {fixture: intr_01_rms, after_ms: 600}
  - wait: reply
"""

pytestmark = [pytest.mark.interop, pytest.mark.slow]


def _python(framework: str) -> Path:
    py = VENVS / framework / "bin" / "python"
    if not py.exists():
        pytest.skip(f"{framework} is not installed: bash scripts/setup.sh interop")
    return py


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Agent:
    """A framework's agent script in its own environment, listening on a loopback port."""

    def __init__(self, framework: str, *args: str):
        self.port = _free_port()
        script = REPO / "interop" / f"{framework}_agent.py"
        self.proc = subprocess.Popen([str(_python(framework)), str(script), "--port", str(self.port),
                                      "--reply", str(REPLY), *args], cwd=REPO,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120  # first start compiles and loads the VAD model
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{framework} agent exited: {self.proc.stderr.read()[-2000:]}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.2)
        raise AssertionError(f"{framework} agent did not listen within 120 s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture
def scenario(tmp_path):
    p = tmp_path / "interop.yaml"
    p.write_text(SCENARIO)
    return p


def turnbench(tmp_path, *args):
    out = tmp_path / "reports"
    r = subprocess.run([sys.executable, "-m", "harness.cli", "run", *map(str, args), "--out", str(out),
                        "--no-progress"], cwd=REPO, capture_output=True, text=True, timeout=300)
    folders = sorted(out.glob("*")) if out.exists() else []
    summary = json.loads((folders[-1] / "summary.json").read_text()) if folders else None
    return r, summary


def assert_measured(r, summary):
    assert r.returncode == 0, r.stderr[-3000:]
    assert summary["errors"] == {}, summary["error_examples"]
    assert summary["latency_ms"]["n"] >= 4  # both calls' plain turns answered and timed
    assert summary["barge_in_stop_ms"] is not None and summary["barge_in_stop_ms"]["n"] >= 1


@pytest.mark.parametrize("transport, path", [("webrtc", "/offer"), ("twilio", "/media-stream")])
def test_pipecat(tmp_path, scenario, transport, path):
    agent = Agent("pipecat")
    try:
        scheme = "http" if transport == "webrtc" else "ws"
        r, summary = turnbench(tmp_path, scenario, "--transport", transport, "--target",
                               f"{scheme}://127.0.0.1:{agent.port}{path}")
    finally:
        agent.stop()
    assert_measured(r, summary)
    # Pipecat interrupts the reply when its VAD hears the caller over it (its output drops what
    # is queued, over Twilio with `clear`): turnbench hears it stop (measured 350-480 ms), long
    # before the reply would have ended (~1.65 s after the barge-in began)
    assert summary["barge_in_stop_ms"]["p99"] < 1000, summary["barge_in_stop_ms"]


def test_fastrtc_webrtc_silent_until_it_speaks_with_per_call_ids(tmp_path, scenario):
    agent = Agent("fastrtc", "--concurrency", "4")
    try:
        url = f"http://127.0.0.1:{agent.port}/webrtc/offer"
        r, summary = turnbench(tmp_path, scenario, "--transport", "webrtc", "--target", url,
                               "--webrtc-field", "webrtc_id={uuid}")
        missing, failed = turnbench(tmp_path / "no-id", scenario, "--transport", "webrtc", "--target", url)
    finally:
        agent.stop()
    assert_measured(r, summary)
    assert missing.returncode == 3  # FastRTC answers 422 without its webrtc_id field
    first = missing.stderr.strip().splitlines()[0]
    assert "every call failed: offer answered HTTP 422 (2 of 2)" in first and "webrtc_id" in first, first
    assert "Traceback" not in missing.stderr


def test_fastrtc_refuses_over_its_concurrency_limit_in_a_200_body(tmp_path, scenario):
    agent = Agent("fastrtc", "--concurrency", "1")
    try:
        r, summary = turnbench(tmp_path, scenario, "--transport", "webrtc", "--target",
                               f"http://127.0.0.1:{agent.port}/webrtc/offer", "--webrtc-field", "webrtc_id={uuid}")
    finally:
        agent.stop()
    assert summary["errors"] == {"refused": 1}, summary["error_examples"]
    assert "concurrency_limit_reached" in summary["error_examples"]["refused"]
    assert summary["latency_ms"]["n"] >= 2  # the call that got through was measured


def test_fastrtc_twilio(tmp_path, scenario):
    agent = Agent("fastrtc", "--concurrency", "4")
    try:
        r, summary = turnbench(tmp_path, scenario, "--transport", "twilio", "--target",
                               f"ws://127.0.0.1:{agent.port}/telephone/handler")
    finally:
        agent.stop()
    assert_measured(r, summary)
