"""The reference pipeline end to end over a real socket, measured by turnbench itself.

Real Silero VAD and pocketsphinx STT; simulated LLM and TTS keep it fast (the real LLM and TTS
are exercised in test_providers.py)."""

import asyncio
import json
import time

import numpy as np
import pytest

from harness.agent.pipeline import PipelineConfig, ReferenceSession, has_content, is_backchannel
from harness.agent.providers.base import STT
from harness.agent.reference import ReferenceServer, load_providers
from harness.audio.frames import FRAME_NS, FRAME_SAMPLES, SAMPLE_RATE
from harness.caller.call import CallSettings
from harness.caller.runner import RunSpec, run_calls
from harness.clock import sleep_until
from harness.scenario.model import Scenario

pytestmark = pytest.mark.slow


def test_backchannel_words():
    assert is_backchannel("yeah") and is_backchannel("uh huh") and is_backchannel("Okay.") and is_backchannel("mm-hmm")
    assert not is_backchannel("wait stop") and not is_backchannel("")
    assert has_content("wait") and has_content("but you look") and not has_content("i'm the") and not has_content("")


async def test_barge_in_cancels_and_backchannel_is_talked_through(fixtures, tmp_path):
    sc = Scenario.model_validate({"version": 1, "name": "pipeline", "steps": [
        {"say": "utt_03_rms"}, {"barge_in": {"fixture": "intr_01_rms", "after_ms": 300}}, {"wait": "reply"},
        {"say": "utt_06_joe"}, {"backchannel": {"fixture": "bc_yeah_slt", "after_ms": 400}}, {"wait": "reply"},
        {"say": "utt_02_slt"}, {"wait": "reply"}]})
    providers = load_providers({"llm": "sim", "tts": "sim"}, {"tts": {"ms_per_char": 90.0}})
    rows = []
    log = tmp_path / "events.jsonl"
    async with ReferenceServer(providers, PipelineConfig(), event_log=log) as srv:
        spec = RunSpec(sc, fixtures, srv.url, call_settings=CallSettings(response_timeout_s=8))
        await run_calls(spec, rows.extend)
    by_kind = {r.kind: r for r in rows}
    events = [json.loads(line) for line in log.read_text().splitlines()]
    barge = [e for e in events if e["type"] == "interrupted" and "speech_ms" in e]
    assert len(barge) == 1 and has_content(barge[0]["text"]) and barge[0]["speech_ms"] >= 220  # what decided it
    assert [e["text"] for e in events if e["type"] == "backchannel.ignored"] and is_backchannel(
        next(e["text"] for e in events if e["type"] == "backchannel.ignored"))
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
        spec = RunSpec(sc, fixtures, srv.url, calls=3, concurrency=3, call_settings=CallSettings(response_timeout_s=15))
        await run_calls(spec, rows.extend)
    assert len(made) == 3  # one set to start with, two more for the calls that overlapped it
    assert len(rows) == 3 and all(r.latency_ms is not None and r.wer is not None and r.wer < 0.3 for r in rows)


async def talk(fixture_pcm: np.ndarray, names: dict, options: dict | None = None,
               cfg: PipelineConfig = PipelineConfig(), tail_s: float = 2.5) -> list[tuple[int, str, dict]]:
    """One utterance into a ReferenceSession at real-time pace, then `tail_s` of silence; returns
    what it sent, in order: (time, "audio" or the event type, the event)."""
    log: list[tuple[int, str, dict]] = []

    async def audio(pcm: bytes) -> None:
        log.append((time.perf_counter_ns(), "audio", {}))

    async def event(ev: dict) -> None:
        log.append((time.perf_counter_ns(), ev["type"], ev))

    pcm = np.concatenate([fixture_pcm, np.zeros(int(tail_s * SAMPLE_RATE), dtype=np.int16)])
    session = ReferenceSession(load_providers(names, options), cfg, audio, event)
    async with asyncio.TaskGroup() as tg:
        runner = tg.create_task(session.run())
        t0 = time.perf_counter_ns()
        for n, at in enumerate(range(0, len(pcm) - FRAME_SAMPLES + 1, FRAME_SAMPLES)):
            await sleep_until(t0 + n * FRAME_NS)
            session.on_audio(pcm[at : at + FRAME_SAMPLES].tobytes(), time.perf_counter_ns())
        runner.cancel()
    return log


def kinds(log, kind):
    return [(t, ev) for t, k, ev in log if k == kind]


async def test_a_speculative_reply_begun_in_a_pause_is_discarded_and_never_heard(fixtures):
    fx = fixtures["paused_03_1200ms_awb"]  # "I was wondering if you could … help me reset my password."
    log = await talk(fx.samples, {"llm": "sim", "tts": "sim"}, {"turn": {"silence_ms": 2000}})
    started, discarded = kinds(log, "llm.speculation_started"), kinds(log, "llm.speculation_discarded")
    assert started and discarded and discarded[0][0] > started[0][0]
    assert "wondering" in started[0][1]["text"] and "password" not in started[0][1]["text"]
    (end_at, _), = kinds(log, "turn.end")  # the pause did not end the turn (2 s of silence needed)
    audio = kinds(log, "audio")
    assert audio and audio[0][0] > end_at  # the speculative reply was never played
    (_, final), = kinds(log, "stt.final")
    assert "password" in final["text"]


@pytest.mark.parametrize("turn, ends", [("vad", 2), ("semantic", 1)])
async def test_semantic_turn_holds_the_floor_through_a_pause_that_vad_cuts_into(fixtures, turn, ends):
    fx = fixtures["paused_03_1200ms_awb"]  # pause after "…if you could": unfinished in words and pitch
    log = await talk(fx.samples, {"llm": "sim", "tts": "sim", "turn": turn})
    assert len(kinds(log, "turn.end")) == ends
    assert {ev["policy"] for _, ev in kinds(log, "turn.end")} <= {"vad", "semantic", "semantic-rules"}


async def test_batch_pipeline_waits_for_each_stage_to_finish(fixtures):
    log = await talk(fixtures["utt_01_joe"].samples, {"llm": "sim", "tts": "sim"}, cfg=PipelineConfig(mode="batch"))
    assert not kinds(log, "llm.speculation_started")
    (_, final), = kinds(log, "stt.final")
    assert "pharmacy" in final["text"]
    (token_at, token), = kinds(log, "llm.first_token")
    assert token["whole_answer"] is True
    (tts_at, _), = kinds(log, "tts.first_audio")
    audio = kinds(log, "audio")
    assert audio and token_at < tts_at <= audio[0][0]


class BrokenStt(STT):
    """BrokenStt (test double): its model fails on the first frame of speech."""

    name = "broken-stt"

    def start(self) -> None:
        pass

    def feed(self, pcm16):
        raise RuntimeError("decoder state corrupted")

    def finish(self) -> str:
        return ""


async def test_a_failing_pipeline_hangs_up_with_the_reason(fixtures):
    providers = load_providers({"llm": "sim", "tts": "sim"})
    providers.stt = BrokenStt()
    sc = Scenario.model_validate({"version": 1, "name": "broken", "steps": [{"say": "utt_01_joe"}, {"wait": "reply"}]})
    rows = []
    async with ReferenceServer(providers, PipelineConfig()) as srv:
        await run_calls(RunSpec(sc, fixtures, srv.url, call_settings=CallSettings(response_timeout_s=3)), rows.extend)
    (row,) = rows
    assert row.latency_ms is None and "decoder state corrupted" in row.error


@pytest.mark.parametrize("mode", ["streaming", "batch"])
async def test_streaming_network_providers_run_on_the_loop_never_in_a_thread(fixtures, mode):
    from dataclasses import replace

    from tests.fakes.providers import StreamingSttDouble, StreamingTtsDouble
    fx = fixtures["utt_01_joe"]
    stt, tts = StreamingSttDouble(fx.text), StreamingTtsDouble()
    providers = replace(load_providers({"llm": "sim", "tts": "sim"}), stt=stt, tts=tts)
    sc = Scenario.model_validate({"version": 1, "name": "two", "steps": [
        {"say": "utt_01_joe"}, {"wait": "reply"}, {"say": "utt_01_joe"}, {"wait": "reply"}]})
    rows = []
    async with ReferenceServer(providers, PipelineConfig(mode=mode)) as srv:
        spec = RunSpec(sc, fixtures, srv.url, call_settings=CallSettings(response_timeout_s=15))
        await run_calls(spec, rows.extend)
    assert len(rows) == 2 and not any(r.error for r in rows)
    assert all(r.latency_ms is not None and r.transcript == fx.text and r.wer == 0.0 for r in rows)
    assert stt.calls.count("finish") == 2 and len(tts.texts) >= 2  # the sync sides would have raised
