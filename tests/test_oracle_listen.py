"""The listening oracle: the caller's speech found by one exact rule, so any tool can be scored."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.agent.oracle import NO_HINTS_WARN_S, OracleSession
from harness.agent.oracle_config import OracleConfig
from harness.agent.oracle_listen import SpeechFinder
from harness.calibration.listening import LISTEN_CASES, calibrate_listening

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


def test_the_scoring_script_pairs_turns_by_where_their_speech_ended(tmp_path):
    # what an outside tool would hand it: its own call ids, ends of speech in seconds
    oracle = [{"schema": "turnbench.oracle_truth/1", "call_id": "oracle-7", "turn": k, "segments": [[a, e]],
               "latency_ms": lat} for k, (a, e, lat) in enumerate([(3200, 40000, 700.0), (60000, 90000, 650.0)])]
    oracle.append({"schema": "turnbench.oracle_note/1", "call_id": "oracle-7", "note": "x"})
    turns = [{"call_id": "mine-1", "eos_s": 40000 / SR + 0.0004, "latency_ms": 700.6},
             {"call_id": "mine-1", "eos_s": 90000 / SR - 0.0011, "latency_ms": 648.5},
             {"call_id": "mine-1", "eos_s": 5.0, "latency_ms": 10.0}]  # no oracle turn ended there
    (tmp_path / "o.jsonl").write_text("".join(json.dumps(r) + "\n" for r in oracle))
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in turns))
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "score_against_oracle.py"),
                          str(tmp_path / "o.jsonl"), str(tmp_path / "t.jsonl")], capture_output=True, text=True, check=True)
    score = json.loads(out.stdout)
    assert score["turns_scored"] == 2 and score["turns_unmatched"] == 1
    assert score["abs_error_ms"] == {"median": 1.05, "p99": pytest.approx(1.491, abs=1e-3), "max": 1.5}


@pytest.mark.slow
async def test_hint_free_calibration_against_the_listening_oracle(fixtures):
    report = await calibrate_listening(fixtures, calls_per_case=1)
    assert report["turns_unpaired"] == 0
    for name in LISTEN_CASES:
        assert report["by_case"][name]["n"] >= 5, (name, report["by_case"])
    # the loopback's own delay is in it (no stamps are shared with the oracle): ~0.2-0.5 ms here
    assert report["latency_error_ms"]["median_abs_error_ms"] <= 3.0, report
