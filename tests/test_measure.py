"""Component benchmarks (`turnbench bench stt|llm|tts`): what each measures, on simulated
providers whose delays are known, and the result document."""

import json
import subprocess
import sys
from pathlib import Path

from harness.agent.providers import create
from harness.components.measure import (
    COMPONENT_SCHEMA,
    LLM_PROMPTS,
    TTS_TEXTS,
    document,
    interleaved,
    partial_stability,
    run_llm,
    stt_sample,
    tts_sample,
)

REPO = Path(__file__).resolve().parents[1]


def test_partial_stability_is_how_much_of_each_partial_the_final_keeps():
    assert partial_stability(["i'd like", "i'd like to book"], "I'd like to book a table") == 1.0
    assert partial_stability(["i bike", "i'd like"], "I'd like a table") == 0.5  # 0/2 then 2/2
    assert partial_stability([], "anything") is None


def test_tts_first_audio_and_real_time_factor_order_providers_by_their_delays():
    providers = {"fast": create("tts", "sim", ttfb_ms="30"), "slow": create("tts", "sim", ttfb_ms="90")}
    samples = interleaved(providers, [(t, t) for t in TTS_TEXTS[:3]], 2, tts_sample)
    assert [s.provider for s in samples[:4]] == ["fast", "slow", "fast", "slow"]  # interleaved input by input
    doc = document("tts", samples, 2, 3)
    fast, slow = doc["providers"]["fast"], doc["providers"]["slow"]
    assert fast["first_audio_ms"]["p50"] >= 30 and slow["first_audio_ms"]["p50"] >= 90
    assert slow["p50_ratio_to_fast"]["first_audio_ms"] > 1.5
    for s in samples:
        m = s.metrics
        assert abs(m["rtf"] - m["synthesis_ms"] / m["audio_ms"]) < 1e-3 and m["audio_ms"] > 0


def test_stt_time_to_final_and_wer(fixtures):
    fx = fixtures["utt_01_joe"]
    stt = create("stt", "sim", final_ms="40", transcript=fx.text)
    end = int(fx.segments[-1][1] * 16000)
    m = stt_sample(stt, fx.samples, end, fx.text)
    assert m["final_after_eos_ms"] >= 40 and m["wer"] == 0.0 and m["partials"] > 0
    wrong = stt_sample(create("stt", "sim", final_ms="1", transcript="something else entirely"), fx.samples, end, fx.text)
    assert wrong["wer"] > 0.5


def test_llm_first_token_and_rate():
    samples = run_llm({"sim": create("llm", "sim", ttft_ms="80", tokens_per_s=40)}, LLM_PROMPTS[:2], 1)
    for s in samples:
        assert s.metrics["first_token_ms"] >= 80 and s.metrics["tokens"] > 1
        assert 20 < s.metrics["tokens_per_s"] <= 41


def test_bench_tts_command_writes_a_labelled_document(tmp_path):
    out = tmp_path / "tts.json"
    r = subprocess.run([sys.executable, "-m", "harness.cli", "bench", "tts", "--tts", "sim", "--rounds", "1",
                        "--provider-opt", "sim.ttfb_ms=20", "--json", str(out)], cwd=REPO, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    assert doc["schema"] == COMPONENT_SCHEMA and doc["stage"] == "tts" and "not end-to-end" in doc["note"]
    assert doc["providers"]["sim"]["first_audio_ms"]["n"] == len(TTS_TEXTS)
    assert "not end-to-end" in r.stdout
    bad = subprocess.run([sys.executable, "-m", "harness.cli", "bench", "tts", "--tts", "nosuch"], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unknown tts provider 'nosuch'" in bad.stderr
