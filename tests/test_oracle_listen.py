"""The listening oracle: the caller's speech found by one exact rule, so any tool can be scored."""

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from harness.agent.oracle import NO_HINTS_WARN_S, OracleSession
from harness.agent.oracle_config import OracleConfig
from harness.agent.oracle_listen import SpeechFinder
from harness.agent.server import OracleServer
from harness.caller.call import CallSettings
from harness.caller.runner import RunSpec, run_calls
from harness.scenario.model import Scenario

ROOT = Path(__file__).resolve().parent.parent
SR = 16_000


def edges(x: np.ndarray, frame: int = 320, **kw) -> list[tuple[str, int]]:
    f = SpeechFinder(**kw)
    out = []
    for k in range(0, len(x), frame):
        out += [(e.what, e.sample) for e in f.feed(x[k : k + frame], k)]
    return out


def test_speech_is_loud_samples_joined_across_gaps_shorter_than_the_hangover():
    x = np.zeros(SR * 3, np.int16)
    x[1601:8000] = 1000
    x[7999 + 1600 : 10500] = -1000  # 1599 silent samples, one short of the 100 ms hangover: same speech
    x[10499 + 1601 : 13000] = 1000  # 1600 silent samples, the hangover exactly: new speech
    assert edges(x, hangover_ms=100) == [("speech", 1601), ("eos", 10499), ("speech", 12100), ("eos", 12999)]


@pytest.mark.parametrize("frame", [160, 320, 333, 4000])
def test_edges_do_not_depend_on_how_the_audio_is_framed(frame):
    rng = np.random.default_rng(3)
    x = np.zeros(SR * 4, np.int16)
    for a in (2000, 20011, 41000):
        x[a : a + 6000] = (rng.standard_normal(6000) * 3000).astype(np.int16)
    quiet = np.abs(x) < 32768 * 10 ** (-50 / 20)
    x[quiet] = 0  # only samples at or above -50 dBFS remain: the rule's own edges are exact
    loud = np.flatnonzero(x)
    expected = edges(x, frame=len(x), hangover_ms=200)
    assert expected[0] == ("speech", loud[0]) and expected[-1] == ("eos", loud[-1])
    assert edges(x, frame=frame, hangover_ms=200) == expected


def test_an_unhinted_caller_is_warned_about_once():
    sent = []

    async def noop(*_a):
        sent.append(_a)

    s = OracleSession(OracleConfig(), noop, noop, "c1")
    for _ in range(NO_HINTS_WARN_S * 50 + 5):
        s.on_audio(320, 0)
    assert len(s.notes) == 1 and "--listen" in s.notes[0] and not sent


@pytest.mark.slow
async def test_a_hint_free_run_scores_against_the_listening_oracle(fixtures, tmp_path):
    log = tmp_path / "oracle.jsonl"
    cfg = OracleConfig(listen=True, delay_ms="uniform:550:900", listen_hangover_ms=500)
    sc = Scenario.model_validate({"version": 1, "name": "listen", "steps": [
        {"say": "utt_01_joe"}, {"wait": "reply"}, {"say": "paused_01_800ms_slt"}, {"wait": "reply"},
        {"say": "utt_04_awb"}, {"wait": "reply"}]})
    rows = []
    async with OracleServer(cfg, log_path=log) as srv:
        await run_calls(RunSpec(sc, fixtures, srv.url, calls=2, concurrency=2,
                                call_settings=CallSettings(hints=False)), rows.extend)
    turns = tmp_path / "turns.jsonl"
    turns.write_text("".join(json.dumps(asdict(r)) + "\n" for r in rows))
    truth = [json.loads(line) for line in log.read_text().splitlines()]
    assert {t["schema"] for t in truth} == {"turnbench.oracle_truth/1"}
    assert all(450 <= t["turn_detection_ms"] <= 600 for t in truth)  # the hangover, then the event
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "score_against_oracle.py"), str(log), str(turns)],
                         capture_output=True, text=True, check=True)
    score = json.loads(out.stdout)
    assert score["turns_scored"] == sum(r.latency_ms is not None for r in rows) >= 5 and score["turns_unmatched"] == 0
    assert score["abs_error_ms"]["median"] <= 3.0  # the loopback's own delay is in it (docs: ≤ 1 ms measured)
