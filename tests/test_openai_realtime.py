"""The OpenAI Realtime protocol, both ends: the caller against the oracle (GA and beta, every
audio format), against a scripted server that behaves like the API (barge-in and truncation,
its events mapped to the trace), and the protocol's session shapes."""

import asyncio
import base64
import json

import numpy as np
import pytest
from aiohttp import web

from harness.agent.oracle_config import OracleConfig
from harness.agent.server import OracleServer
from harness.audio import alaw
from harness.caller.call import CallSettings
from harness.caller.runner import RunSpec, run_calls
from harness.scenario.model import Scenario
from harness.transports import TargetRefused, TargetUnreachable
from harness.transports.openai_realtime import OpenAIRealtimeTransport
from harness.transports.realtime_protocol import RealtimeMessageError, read_session, session_update
from tests.fakes.agents import ws_handler_server

SAY = {"version": 1, "name": "s", "steps": [{"say": "utt_01_joe"}, {"wait": "reply"}, {"say": "utt_02_slt"},
                                             {"wait": "reply"}]}


async def measure(fixtures, options: dict, steps=SAY, cfg=OracleConfig(delay_ms="300")):
    rows, tls = [], []
    async with OracleServer(cfg) as srv:
        spec = RunSpec(Scenario.model_validate(steps), fixtures, srv.url_for("openai-realtime"), "openai-realtime",
                       calls=1, call_settings=CallSettings(hints=True), call_id_in_url=True, transport_options=options)
        outcome = await run_calls(spec, rows.extend, on_timeline=tls.append)
        await asyncio.sleep(0.2)
        truth = {t.turn: t for t in srv.truth}
    return rows, truth, outcome, tls[0]


@pytest.mark.slow
@pytest.mark.parametrize("protocol, fmt", [("ga", "pcm16"), ("beta", "g711_alaw")])
async def test_oracle_over_realtime_is_measured_to_the_loopback(fixtures, protocol, fmt):
    rows, truth, outcome, tl = await measure(fixtures, {"protocol": protocol, "audio_format": fmt})
    assert outcome.call_errors == [] and tl.protocol_errors == []
    errors = [r.latency_ms - truth[r.turn].latency_ms for r in rows]
    assert len(errors) == 2 and all(0 <= e < 3 for e in errors), errors  # the loopback, nothing else
    assert all(r.turn_detection_ms is not None for r in rows)  # the oracle's turn.end → speech_stopped → turn.end
    assert tl.setup_ms is not None and tl.setup_ms > 0  # upgrade → session.updated, outside every turn


@pytest.mark.slow
async def test_a_barge_in_is_the_servers_speech_started_and_the_clients_truncate(fixtures):
    steps = {"version": 1, "name": "b", "steps": [{"say": "utt_07_slt"},
                                                  {"barge_in": {"fixture": "intr_01_rms", "after_ms": 500}},
                                                  {"wait": "reply"}]}
    cfg = OracleConfig(delay_ms="300", barge_in_stop_ms=200, burst=0, chunk_ms=500)  # audio queued at the caller
    rows, truth, outcome, tl = await measure(fixtures, {}, steps, cfg)
    barge = next(r for r in rows if r.kind == "barge_in")
    assert tl.clears, "speech_started while playing clears the caller's playout"
    assert barge.barge_in_stop_ms is not None
    assert abs(barge.barge_in_stop_ms - truth[barge.turn].barge_in_stop_ms) < 3


def _pcm24(ms: int, level: int = 8000) -> str:
    n = 24 * ms
    tone = (level * np.sin(2 * np.pi * 440 * np.arange(n) / 24_000)).astype("<i2")
    return base64.b64encode(tone.tobytes()).decode()


async def test_the_caller_speaks_the_protocol_as_the_api_expects(fixtures, monkeypatch):
    # a scripted server in the API's manner (beta event names): it answers after the caller's
    # first turn, then its VAD hears the caller over its reply and it says speech_started
    seen: dict = {"headers": None, "messages": []}

    async def handler(request):
        seen["headers"] = dict(request.headers)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"type": "session.created", "session": {}})
        appends = 0
        async for msg in ws:
            m = json.loads(msg.data)
            seen["messages"].append(m["type"] if m["type"] != "conversation.item.truncate" else m)
            if m["type"] == "session.update":
                await ws.send_json({"type": "session.updated", "session": m["session"]})
            elif m["type"] == "input_audio_buffer.append":
                appends += 1
                if appends == 60:
                    await ws.send_json({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 1200,
                                        "item_id": "item_u1"})
                    await ws.send_json({"type": "conversation.item.input_audio_transcription.completed",
                                        "item_id": "item_u1", "content_index": 0, "transcript": "hello there"})
                    await ws.send_json({"type": "response.created", "response": {"id": "resp_1"}})
                    for _ in range(10):  # a second of audio at once, as the API sends it
                        await ws.send_json({"type": "response.audio.delta", "response_id": "resp_1",
                                            "item_id": "item_a1", "delta": _pcm24(100)})
                elif appends == 75:  # 300 ms into the reply
                    await ws.send_json({"type": "input_audio_buffer.speech_started", "audio_start_ms": 1500,
                                        "item_id": "item_u2"})
                    await ws.send_json({"type": "error", "error": {"type": "invalid_request_error",
                                                                    "code": "x", "message": "noted"}})
        return ws

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    async with ws_handler_server(handler, "/v1/realtime") as srv:
        t = OpenAIRealtimeTransport(f"ws://127.0.0.1:{srv.port}/v1/realtime", protocol="beta",
                                    model="gpt-realtime", extra_headers={"X-Extra": "1"})
        await t.connect()
        got = []

        async def read():
            async for item in t.received():
                got.append(item)

        reader = asyncio.create_task(read())
        silence = bytes(640)
        start = asyncio.get_running_loop().time()
        for n in range(100):
            await t.send_audio(silence)
            await asyncio.sleep(max(0.0, start + (n + 1) * 0.02 - asyncio.get_running_loop().time()))
        await asyncio.sleep(0.2)
        await t.close()
        reader.cancel()
    assert seen["headers"]["Authorization"] == "Bearer sk-test-not-a-real-key"
    assert seen["headers"]["OpenAI-Beta"] == "realtime=v1" and seen["headers"]["X-Extra"] == "1"
    assert t.url.endswith("/v1/realtime?model=gpt-realtime")
    assert seen["messages"][0] == "session.update" and seen["messages"].count("input_audio_buffer.append") == 100
    events = [g.event for g in got if hasattr(g, "event")]
    kinds = [e["type"] for e in events]
    assert kinds[:4] == ["turn.end", "stt.final", "response.created", "tts.first_audio"]
    assert events[1]["text"] == "hello there"
    clears = [g for g in got if type(g).__name__ == "PlayoutCleared"]
    assert len(clears) == 1  # speech_started while a second of audio was queued
    (truncate,) = [m for m in seen["messages"] if isinstance(m, dict)]
    assert truncate["item_id"] == "item_a1" and truncate["content_index"] == 0
    assert 250 <= truncate["audio_end_ms"] <= 350, truncate  # what had been heard of the reply
    assert any("noted" in e for e in t.protocol_errors)  # the server's error event is reported, not fatal


async def test_turn_detection_none_commits_each_turn_but_not_a_backchannel(fixtures):
    received: list[str] = []

    async def handler(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            m = json.loads(msg.data)
            received.append(m["type"])
            if m["type"] == "session.update":
                assert m["session"]["audio"]["input"]["turn_detection"] is None
                await ws.send_json({"type": "session.updated", "session": m["session"]})
        return ws

    sc = Scenario.model_validate({"version": 1, "name": "n", "steps": [
        {"say": "bc_yeah_joe"}, {"say": "bc_okay_slt"}, {"say": "bc_right_awb"}]})
    async with ws_handler_server(handler, "/v1/realtime") as srv:
        url = f"ws://127.0.0.1:{srv.port}/v1/realtime"
        spec = RunSpec(sc, fixtures, url, "openai-realtime", calls=1, call_settings=CallSettings(response_timeout_s=0.5),
                       transport_options={"turn_detection": "none"})
        await run_calls(spec, lambda rows: None)
        assert received.count("input_audio_buffer.commit") == 3 and received.count("response.create") == 3
        first_commit = received.index("input_audio_buffer.commit")
        assert received[first_commit + 1] == "response.create"
        assert received.index("input_audio_buffer.append") < first_commit  # after the turn's audio
        received.clear()
        t = OpenAIRealtimeTransport(url, turn_detection="none")
        await t.connect()
        await t.caller_turn_ended("backchannel")  # said over the agent: not a turn of its own
        await t.caller_turn_ended("barge_in")
        await asyncio.sleep(0.1)
        await t.close()
    assert received.count("input_audio_buffer.commit") == 1


async def test_a_refused_session_and_a_refused_upgrade_say_why():
    async def refuse(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for _ in ws:
            await ws.send_json({"type": "error", "error": {"type": "invalid_request_error",
                                                            "code": "invalid_value", "message": "bad format"}})
        return ws

    async def unauthorized(request):
        return web.Response(status=401, text='{"error": {"message": "Incorrect API key"}}')

    async with ws_handler_server(refuse, "/v1/realtime") as srv:
        with pytest.raises(TargetRefused, match="session.update refused: invalid_value: bad format"):
            await OpenAIRealtimeTransport(f"ws://127.0.0.1:{srv.port}/v1/realtime").connect()
    async with ws_handler_server(unauthorized, "/v1/realtime") as srv:
        with pytest.raises(TargetUnreachable, match="HTTP 401"):
            await OpenAIRealtimeTransport(f"ws://127.0.0.1:{srv.port}/v1/realtime").connect()
    with pytest.raises(ValueError, match="turn_detection 'vad'"):
        OpenAIRealtimeTransport("ws://127.0.0.1:1/v1/realtime", turn_detection="vad")


def test_session_shapes_ga_and_beta_read_back():
    ga = session_update("ga", "g711_ulaw", "server_vad", silence_ms=350, model="m", transcription_model="t")
    s = ga["session"]
    assert s["type"] == "realtime" and s["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert s["audio"]["input"]["turn_detection"] == {"type": "server_vad", "silence_duration_ms": 350}
    assert s["audio"]["input"]["transcription"] == {"model": "t"}
    assert read_session(s) == ("ga", "g711_ulaw", "server_vad")
    beta = session_update("beta", "pcm16", "none")["session"]
    assert beta["input_audio_format"] == "pcm16" and beta["turn_detection"] is None
    assert read_session(beta) == ("beta", "pcm16", "none")
    assert read_session(session_update("ga", "pcm16", "semantic_vad")["session"])[2] == "semantic_vad"
    with pytest.raises(RealtimeMessageError, match="rate 16000"):
        read_session({"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}})
    with pytest.raises(RealtimeMessageError, match="input_audio_format 'opus'"):
        read_session({"input_audio_format": "opus"})


def test_alaw_is_g711():
    x = np.arange(-32768, 32768, 7, dtype=np.int16)
    y = alaw.decode(alaw.encode(x))
    assert np.all(np.abs(y.astype(int) - x) <= np.maximum(16, np.abs(x.astype(int)) // 16))  # 13-bit companding
    assert alaw.encode(np.array([0], np.int16)) == b"\xd5" and alaw.encode(np.array([-1], np.int16)) == b"\x55"
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import audioop  # the reference implementation, where Python still ships it
        except ImportError:
            return
    assert alaw.encode(x) == audioop.lin2alaw(x.tobytes(), 2)


@pytest.mark.parametrize("fmt, wire_bytes", [("pcm16", 960), ("g711_ulaw", 160), ("g711_alaw", 160)])
def test_each_format_carries_a_20_ms_frame_there_and_back(fmt, wire_bytes):
    from harness.transports.realtime_protocol import WireDecoder, WireEncoder
    t = np.arange(3200) / 16000
    x = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    enc, dec = WireEncoder(fmt), WireDecoder(fmt)
    wire = [enc.encode(x[i : i + 320].tobytes()) for i in range(0, len(x), 320)]
    assert all(len(w) == wire_bytes for w in wire)  # 24 kHz PCM16, or 8 kHz one byte a sample
    y = np.concatenate([dec.decode(w) for w in wire])
    assert len(y) == len(x)
    err = np.abs(y[200:-200].astype(float) - x[200:-200])  # 440 Hz is in band at 8 kHz too
    assert np.sqrt(np.mean(err**2)) < (60 if fmt == "pcm16" else 400), fmt
