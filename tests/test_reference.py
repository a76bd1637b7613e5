"""The real reference agent (Silero, pocketsphinx, SmolLM2 on llama.cpp, Piper) over a real socket."""

import pytest

from harness.agent.pipeline import PipelineConfig
from harness.agent.reference import ReferenceServer, load_providers
from harness.caller.call import CallSettings
from harness.caller.runner import RunSpec, run_calls
from harness.metrics.turns import STAGES
from harness.scenario.model import Scenario

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("mode", ["streaming", "batch"])
async def test_every_turn_gets_a_latency_a_transcript_and_its_stages(fixtures, mode):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is built by `bash scripts/setup.sh agent`")
    providers = load_providers()
    assert {k: v["simulated"] for k, v in providers.labels.items()} == dict.fromkeys(providers.labels, False)
    sc = Scenario.model_validate({"version": 1, "name": "real", "steps": [
        {"say": "utt_01_joe"}, {"wait": "reply"}, {"say": "utt_11_joe"}, {"wait": "reply"}]})
    rows = []
    async with ReferenceServer(providers, PipelineConfig(mode=mode)) as srv:
        await run_calls(RunSpec(sc, fixtures, srv.url, call_settings=CallSettings(response_timeout_s=10)), rows.extend)
    assert len(rows) == 2
    for r in rows:
        assert r.error is None and r.latency_ms is not None and r.false_interruption is False, r
        assert r.wer is not None and r.wer < 0.5, r.transcript
        assert all(r.stages_ms[s] is not None for s in STAGES), r.stages_ms
        # consecutive intervals: they add up to the latency, none negative, none cut short
        assert sum(r.stages_ms.values()) == pytest.approx(r.latency_ms, abs=1.0), r.stages_ms
        assert min(r.stages_ms.values()) >= 0 and all(v >= 0 for v in (r.stages_overlap_ms or {}).values())
        assert r.turn_detection_ms >= 600  # the vad policy's 600 ms of silence, measured from the caller's side
