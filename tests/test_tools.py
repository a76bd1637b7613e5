"""The reference agent's tools: routing, the simulated backend, fillers over a call's wait, and
what turnbench measures of it (first content word, dead air, fillers) over a real socket."""

import asyncio
import json

import numpy as np
import pytest

from harness.agent import tools
from harness.agent.pipeline import PipelineConfig
from harness.agent.reference import ReferenceServer, load_providers
from harness.agent.tools import SimulatedBackend, ToolConfig, ToolFailed, route
from harness.caller.call import CallSettings
from harness.caller.runner import RunSpec, run_calls
from harness.scenario.model import Scenario
from tests.test_pipeline import kinds, talk


def test_route_picks_the_first_intent_whose_words_the_transcript_holds():
    assert route("i think was charge twice the sunni order") == "lookup_order"
    assert route("nice book to go for two at") == "check_availability"
    assert route("can you tell me the balance on my account") == tools.PREFETCHED
    assert route("is there a direct flight from boston to denver") == "search_flights"
    assert route("what time does the pharmacy close today") is None
    assert route("my border number is") is None  # whole words only


def test_tool_config_rejects_what_it_cannot_run():
    with pytest.raises(ValueError, match="lognormal"):
        ToolConfig(latency="lognormal:900:100")
    with pytest.raises(ValueError, match="error rate"):
        ToolConfig(error_rate=1.5)
    with pytest.raises(ValueError, match="fillers"):
        ToolConfig(fillers="music")


async def test_backend_latency_and_failures_follow_the_configuration():
    ok = SimulatedBackend(ToolConfig(latency="uniform:40:60"))
    t0 = asyncio.get_running_loop().time()
    assert (await ok.call("lookup_order"))["status"] == "shipped"
    assert 0.035 <= asyncio.get_running_loop().time() - t0 < 0.5
    failing = SimulatedBackend(ToolConfig(latency="1", error_rate=1.0))
    with pytest.raises(ToolFailed, match="lookup_order"):
        await failing.call("lookup_order")
    # seeded per call: two calls of one run draw different latencies, a rerun the same ones
    def first_draw(i: int) -> float:
        backend = SimulatedBackend(ToolConfig(latency="lognormal:300:1500"), i)
        return backend._delay.draw(backend._rng)
    draws = [[first_draw(i) for i in (1, 2)] for _ in range(2)]
    assert draws[0] == draws[1] and draws[0][0] != draws[0][1]


def _cfg(fillers: str, latency: str = "1500") -> PipelineConfig:
    return PipelineConfig(tools=ToolConfig(enabled=True, latency=latency, fillers=fillers, prefetch=False))


def _longest_audio_gap_ms(log, after_ns: int) -> float:
    times = [t for t, _ in kinds(log, "audio") if t >= after_ns]
    return max(np.diff(times) / 1e6, default=0.0)


@pytest.mark.slow
@pytest.mark.parametrize("fillers", ["ack+bridge", "ack", "none"])
async def test_a_slow_lookup_is_bridged_acknowledged_or_silent_as_configured(fixtures, fillers):
    fx = fixtures["utt_10_espeak"]  # "I think I was charged twice for the same order."
    log = await talk(fx.samples, {"llm": "sim", "tts": "sim", "stt": "sim"},
                     {"stt": {"transcript": fx.text}, "tts": {"ms_per_char": 40.0}}, cfg=_cfg(fillers), tail_s=5.0)
    (start_at, started), = kinds(log, "tool.started")
    (done_at, finished), = kinds(log, "tool.finished")
    assert started["name"] == "lookup_order" and 1400 <= (done_at - start_at) / 1e6 < 2500
    (content_at, _), = kinds(log, "response.content_start")
    assert content_at > done_at  # the content follows the lookup's answer
    filler = kinds(log, "response.filler")
    first_audio = kinds(log, "audio")[0][0]
    if fillers == "none":
        assert not filler and first_audio > done_at  # silence until the answer
        return
    assert filler[0][1]["kind"] == "ack" and filler[0][0] < start_at + 100e6  # at once
    assert first_audio < done_at
    bridges = [ev for _, ev in filler if ev["kind"] == "bridge"]
    gap = _longest_audio_gap_ms(log, first_audio)
    if fillers == "ack+bridge":
        assert bridges and gap < 250  # the caller never hears the wait
    else:
        assert not bridges and gap > 300  # the acknowledgement ran out before the answer came


@pytest.mark.slow
async def test_turnbench_measures_content_after_fillers_and_the_dead_air_bridging_removes(fixtures, tmp_path):
    sc = Scenario.model_validate({"version": 1, "name": "tools", "defaults": {"reply_silence_ms": 3000},
                                  "steps": [{"say": "utt_10_espeak"}, {"wait": "reply"}]})
    measured = {}
    for fillers in ("ack+bridge", "ack"):
        providers = load_providers({"llm": "sim", "tts": "sim", "stt": "sim"},
                                   {"stt": {"transcript": fixtures["utt_10_espeak"].text}, "tts": {"ms_per_char": 40.0}})
        rows, log = [], tmp_path / f"{fillers}.jsonl"
        async with ReferenceServer(providers, _cfg(fillers, "1800"), event_log=log) as srv:
            spec = RunSpec(sc, fixtures, srv.url, call_settings=CallSettings(response_timeout_s=8, reply_silence_ms=3000))
            await run_calls(spec, rows.extend)
        (r,) = rows
        events = [json.loads(line) for line in log.read_text().splitlines()]
        assert r.error is None and r.fillers == sum(e["type"] == "response.filler" for e in events) >= 1
        # the filler is heard first; the content only after the lookup (1.8 s) and the LLM
        assert r.latency_ms - r.turn_detection_ms < 150 and r.first_content_ms > r.latency_ms + 1500
        measured[fillers] = r
    assert measured["ack+bridge"].dead_air_ms == 0.0  # one continuous answer
    assert measured["ack"].dead_air_ms > 300  # the acknowledgement ran out long before the answer
