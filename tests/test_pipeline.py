"""The reference pipeline end to end over a real socket, measured by turnbench itself.

Real Silero VAD and pocketsphinx STT; simulated LLM and TTS keep it fast (the real LLM and TTS
are exercised in test_providers.py)."""

import pytest

from harness.agent.pipeline import PipelineConfig, is_backchannel
from harness.agent.reference import ReferenceServer, load_providers
from harness.caller.call import CallSettings
from harness.caller.runner import RunSpec, run_calls
from harness.scenario.model import Scenario

pytestmark = pytest.mark.slow


def test_backchannel_words():
    assert is_backchannel("yeah") and is_backchannel("uh huh") and is_backchannel("Okay.") and is_backchannel("mm-hmm")
    assert not is_backchannel("wait stop") and not is_backchannel("")


async def test_barge_in_cancels_and_backchannel_is_talked_through(fixtures):
    sc = Scenario.model_validate({"version": 1, "name": "pipeline", "steps": [
        {"say": "utt_03_rms"}, {"barge_in": {"fixture": "intr_01_rms", "after_ms": 300}}, {"wait": "reply"},
        {"say": "utt_06_joe"}, {"backchannel": {"fixture": "bc_yeah_slt", "after_ms": 400}}, {"wait": "reply"},
        {"say": "utt_02_slt"}, {"wait": "reply"}]})
    providers = load_providers({"llm": "sim", "tts": "sim"}, {"tts": {"ms_per_char": 90.0}})
    rows = []
    async with ReferenceServer(providers, PipelineConfig()) as srv:
        spec = RunSpec(sc, fixtures, srv.url, call_settings=CallSettings(response_timeout_s=8))
        await run_calls(spec, rows.extend)
    by_kind = {r.kind: r for r in rows}
    assert len(rows) == 5 and not any(r.error for r in rows)
    bi = by_kind["barge_in"]
    assert bi.barge_in_success is True and bi.barge_in_stop_ms < 500
    assert by_kind["backchannel"].backchannel_ok is True
    assert by_kind["backchannel"].transcript is None  # ignored: no turn, no reply of its own
    for r in rows:
        if r.kind in ("utterance", "barge_in"):
            assert r.latency_ms is not None and r.false_interruption is False
            assert r.stages_ms["stt_final"] is not None and r.turn_detection_ms >= 600  # vad policy: 600 ms silence
            assert r.wer is not None and r.wer < 0.5


async def test_concurrent_calls_each_get_their_own_models(fixtures):
    made = []

    def factory():
        made.append(load_providers({"llm": "sim", "tts": "sim"}))
        return made[-1]

    sc = Scenario.model_validate({"version": 1, "name": "two", "steps": [{"say": "utt_01_joe"}, {"wait": "reply"}]})
    rows = []
    async with ReferenceServer(factory(), PipelineConfig(), factory=factory) as srv:
        spec = RunSpec(sc, fixtures, srv.url, calls=3, concurrency=3, call_settings=CallSettings(response_timeout_s=8))
        await run_calls(spec, rows.extend)
    assert len(made) == 3  # one set to start with, two more for the calls that overlapped it
    assert len(rows) == 3 and all(r.latency_ms is not None and r.wer is not None and r.wer < 0.3 for r in rows)
