"""Twilio Media Streams over real sockets: message order and fields, clear and mark semantics,
bad input from an agent, and the oracle measured over the phone-network protocol."""

import asyncio
import base64
import json

import numpy as np
import pytest

from harness.agent.oracle_config import OracleConfig
from harness.agent.server import OracleServer
from harness.audio import mulaw
from harness.caller.call import CallSettings
from harness.caller.runner import RunSpec, run_calls
from harness.playout import play_out
from harness.records.received import AudioReceived, PlayoutCleared
from harness.scenario.model import Scenario
from harness.transports.twilio import TwilioTransport
from harness.transports.twilio_protocol import MulawDecoder, MulawEncoder
from tests.fakes.agents import scripted_ws_agent

SMOKE = {"version": 1, "name": "s", "steps": [{"say": "utt_01_joe"}, {"wait": "reply"}]}


def tone_payload(ms: int, level: int = 8000) -> str:
    t = np.arange(8 * ms) / 8000
    return base64.b64encode(mulaw.encode((level * np.sin(2 * np.pi * 300 * t)).astype(np.int16))).decode()


async def test_caller_speaks_the_protocol_in_order():
    async def script(ws, received):
        await asyncio.sleep(0.35)
        await ws.close()

    async with scripted_ws_agent(script) as srv:
        t = TwilioTransport(f"ws://127.0.0.1:{srv.port}/media-stream", custom_parameters={"caller": "+15550100"})
        await t.connect()
        for _ in range(10):
            await t.send_audio(bytes(640))
        await t.close()
        await asyncio.sleep(0.1)
    msgs = srv.connections[0]
    assert [m["event"] for m in msgs[:2]] == ["connected", "start"]
    start = msgs[1]
    assert start["start"]["mediaFormat"] == {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
    assert start["streamSid"] == start["start"]["streamSid"] == t.stream_sid
    assert start["start"]["callSid"].startswith("CA") and start["start"]["customParameters"] == {"caller": "+15550100"}
    media = [m for m in msgs if m["event"] == "media"]
    assert len(media) == 10
    assert all(len(base64.b64decode(m["media"]["payload"])) == 160 for m in media)  # 20 ms of 8 kHz mu-law
    assert [int(m["media"]["chunk"]) for m in media] == list(range(1, 11))
    seqs = [int(m["sequenceNumber"]) for m in msgs]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert msgs[-1]["event"] == "stop"


async def test_clear_drops_queued_audio_and_returns_marks():
    sid = {}

    async def script(ws, received):
        while len(received) < 2:
            await asyncio.sleep(0.01)
        sid["v"] = received[1]["streamSid"]
        await ws.send_str(json.dumps({"event": "media", "streamSid": sid["v"], "media": {"payload": tone_payload(2000)}}))
        await ws.send_str(json.dumps({"event": "mark", "streamSid": sid["v"], "mark": {"name": "end-of-reply"}}))
        await asyncio.sleep(0.3)
        await ws.send_str(json.dumps({"event": "clear", "streamSid": sid["v"]}))
        await asyncio.sleep(0.3)
        await ws.close()

    async with scripted_ws_agent(script) as srv:
        t = TwilioTransport(f"ws://127.0.0.1:{srv.port}/media-stream")
        await t.connect()
        items = [item async for item in t.received()]
        await t.close()
    audio = [i for i in items if isinstance(i, AudioReceived)]
    clears = [i for i in items if isinstance(i, PlayoutCleared)]
    assert len(audio) == 1 and len(audio[0].samples) == 32000 and len(clears) == 1
    heard = play_out(audio, audio[0].arrival_ns, clears)
    heard_ms = len(heard.samples) / 16
    assert 280 <= heard_ms <= 330  # 2 s queued, cleared 300 ms in: the rest is never heard
    (name, acked_ns), = t.marks_acked
    assert name == "end-of-reply"
    assert abs(acked_ns - clears[0].arrival_ns) < 20e6  # a cleared mark comes back at once, not 2 s later


async def test_mark_comes_back_when_playout_reaches_it():
    async def script(ws, received):
        while len(received) < 2:
            await asyncio.sleep(0.01)
        sid = received[1]["streamSid"]
        await ws.send_str(json.dumps({"event": "media", "streamSid": sid, "media": {"payload": tone_payload(400)}}))
        await ws.send_str(json.dumps({"event": "mark", "streamSid": sid, "mark": {"name": "m1"}}))
        for _ in range(100):
            if any(m.get("event") == "mark" for m in received):
                break
            await asyncio.sleep(0.01)
        await ws.close()

    async with scripted_ws_agent(script) as srv:
        t = TwilioTransport(f"ws://127.0.0.1:{srv.port}/media-stream")
        await t.connect()
        items = [item async for item in t.received()]
        await t.close()
        sent_back = [m for m in srv.connections[0] if m.get("event") == "mark"]
    first = next(i for i in items if isinstance(i, AudioReceived))
    (_, acked_ns), = t.marks_acked
    assert 395 <= (acked_ns - first.arrival_ns) / 1e6 <= 430  # after the 400 ms it was queued behind
    assert sent_back[0]["mark"] == {"name": "m1"} and sent_back[0]["streamSid"] == t.stream_sid


async def test_bad_messages_are_protocol_errors_and_the_call_goes_on(fixtures):
    async def script(ws, received):
        while len(received) < 2:
            await asyncio.sleep(0.01)
        sid = received[1]["streamSid"]
        await ws.send_str("{not json")
        await ws.send_str(json.dumps({"event": "media", "streamSid": "MZwrong", "media": {"payload": tone_payload(100)}}))
        await ws.send_str(json.dumps({"event": "media", "streamSid": sid, "media": {"payload": "%%%"}}))
        await ws.send_str(json.dumps({"event": "dance", "streamSid": sid}))
        await ws.send_bytes(b"\x00\x01")
        await asyncio.sleep(3.2)  # after the caller's 2.5 s utterance: a reply
        await ws.send_str(json.dumps({"event": "media", "streamSid": sid, "media": {"payload": tone_payload(600)}}))
        await asyncio.sleep(2)

    sc = Scenario.model_validate(SMOKE)
    rows = []
    async with scripted_ws_agent(script) as srv:
        spec = RunSpec(sc, fixtures, f"ws://127.0.0.1:{srv.port}/media-stream", "twilio", calls=1,
                       call_settings=CallSettings(response_timeout_s=2.0))
        outcome = await run_calls(spec, rows.extend)
    (err,) = outcome.call_errors
    assert err.startswith("protocol error: malformed JSON") and "(and 4 more)" in err
    assert rows[0].latency_ms is not None  # the good media after the bad was still measured


async def test_agent_end_refuses_a_wrong_media_format():
    import aiohttp
    async with OracleServer(OracleConfig()) as srv:
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(srv.url_for("twilio")) as ws:
                await ws.send_str(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
                await ws.send_str(json.dumps({"event": "start", "streamSid": "MZ1", "start": {
                    "streamSid": "MZ1", "mediaFormat": {"encoding": "audio/l16", "sampleRate": 16000, "channels": 1}}}))
                msg = await ws.receive()
        assert msg.type.name == "CLOSE" and ws.close_code == 1003
        for _ in range(100):
            if srv.refused:
                break
            await asyncio.sleep(0.01)
        assert "encoding" in srv.refused[0] and "audio/l16" in srv.refused[0]


@pytest.mark.parametrize("first,second,code,words", [
    ({"event": "connected"}, {"event": "start", "streamSid": "MZ1", "start": ["not", "a", "dict"]}, 1003,
     "start is not a JSON object"),
    ({"event": "connected"}, {"event": "start", "streamSid": "MZ1", "start": {
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": ["x"]}}, 1003, "customParameters is not a JSON object"),
    ({"event": "connected"}, {"event": "media", "streamSid": "MZ1", "media": {"payload": ""}}, 1003,
     "`media` before `start`"),
    ({"event": "connected"}, None, 1008, "no `start` message within 0.5 s"),
], ids=["start-list", "params-list", "media-first", "no-start"])
async def test_agent_end_refuses_a_broken_start_with_a_close_code_and_the_reason(first, second, code, words):
    import aiohttp

    from harness.agent.links import twilio as twilio_link
    old_timeout = twilio_link.HANDSHAKE_TIMEOUT_S
    twilio_link.HANDSHAKE_TIMEOUT_S = 0.5
    try:
        async with OracleServer(OracleConfig()) as srv:
            async with aiohttp.ClientSession() as s:
                async with s.ws_connect(srv.url_for("twilio")) as ws:
                    for m in (first, second):
                        if m is not None:
                            await ws.send_str(json.dumps(m))
                    msg = await asyncio.wait_for(ws.receive(), 5)
            assert msg.type.name == "CLOSE" and ws.close_code == code
            for _ in range(100):
                if srv.refused:
                    break
                await asyncio.sleep(0.01)
            assert words in srv.refused[0]
    finally:
        twilio_link.HANDSHAKE_TIMEOUT_S = old_timeout


def test_codec_round_trip_keeps_speech_and_adds_no_delay():
    t = np.arange(16000) / 16000
    x = (8000 * np.sin(2 * np.pi * 440 * t) * (t > 0.5)).astype(np.int16)  # silence, then a tone at 500 ms
    enc, dec = MulawEncoder(), MulawDecoder()
    y = np.concatenate([dec.decode(enc.encode(x[i:i + 320])) for i in range(0, len(x), 320)])
    assert len(y) == len(x)
    onset = np.flatnonzero(np.abs(y) > 2000)[0]
    assert abs(onset - 8000) <= 8  # within half a millisecond
    err = (y[9000:15000].astype(float) - x[9000:15000]) ** 2
    assert 10 * np.log10(np.mean(x[9000:15000].astype(float) ** 2) / err.mean()) > 25  # telephone quality


@pytest.mark.slow
async def test_oracle_over_twilio_barge_in_is_cleared(fixtures):
    sc = Scenario.model_validate({"version": 1, "name": "b", "steps": [
        {"say": "utt_07_slt"}, {"barge_in": {"fixture": "intr_01_rms", "after_ms": 400}}, {"wait": "reply"}]})
    rows, tls = [], []
    cfg = OracleConfig(delay_ms="300", burst=0, chunk_ms=500, barge_in_stop_ms=150)
    async with OracleServer(cfg) as srv:
        spec = RunSpec(sc, fixtures, srv.url_for("twilio"), "twilio", calls=1,
                       call_settings=CallSettings(hints=True), call_id_in_url=True)
        await run_calls(spec, rows.extend, on_timeline=tls.append)
        await asyncio.sleep(0.2)
        truth = {t.turn: t for t in srv.truth}
    barge = next(r for r in rows if r.kind == "barge_in")
    assert tls[0].clears, "the oracle stops a queued reply with `clear`"
    # the whole reply was queued at once: only `clear` can stop it on time
    assert abs(barge.barge_in_stop_ms - truth[barge.turn].barge_in_stop_ms) < 5
    assert barge.barge_in_success
    assert abs(rows[0].latency_ms - truth[0].latency_ms) < 5


async def test_a_refusal_on_the_stream_is_the_calls_error(fixtures):
    # a server at its concurrency limit answers the Media Stream with a refusal and closes it
    from harness.caller.call import CallSettings
    from harness.caller.runner import RunSpec, run_calls
    from harness.scenario.model import Scenario
    from tests.fakes.agents import ws_handler_server

    async def refuse(request):
        from aiohttp import web
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.receive()  # connected
        await ws.send_json({"status": "failed", "meta": {"error": "concurrency_limit_reached", "limit": 1}})
        await ws.close()
        return ws

    sc = Scenario.model_validate({"version": 1, "name": "s", "steps": [{"say": "utt_01_joe"}, {"wait": "reply"}]})
    async with ws_handler_server(refuse, "/media-stream") as srv:
        spec = RunSpec(sc, fixtures, f"ws://127.0.0.1:{srv.port}/media-stream", "twilio", calls=1,
                       call_settings=CallSettings(response_timeout_s=1))
        outcome = await run_calls(spec, lambda rows: None)
    assert outcome.call_errors == ["refused: concurrency_limit_reached"]
