"""WebRTC over loopback: both signalling styles, loopback-only ICE, our own receive path, bad
answers from a target, and the oracle measured through Opus."""

import asyncio
import re

import aiohttp
import pytest

from harness.agent.oracle_config import OracleConfig
from harness.agent.server import OracleServer
from harness.caller.call import CallSettings
from harness.caller.runner import RunSpec, run_calls
from harness.records.received import AudioReceived
from harness.scenario.model import Scenario
from harness.transports import TargetUnreachable
from harness.transports.webrtc import WebRtcTransport
from harness.transports.webrtc_media import _DecodeOnArrival, sdp_has_audio
from tests.fakes.agents import http_status_server, unique_id_offer_proxy

pytestmark = pytest.mark.slow
SAY = {"version": 1, "name": "s", "steps": [{"say": "utt_01_joe"}, {"wait": "reply"}, {"say": "utt_02_slt"},
                                             {"wait": "reply"}]}


def candidate_addresses(sdp: str) -> set[str]:
    return {m.group(1) for m in re.finditer(r"a=candidate:\S+ \d \w+ \d+ (\S+) \d+ typ", sdp)}


async def measure(fixtures, signalling: str, steps=SAY, cfg=OracleConfig(delay_ms="300")):
    sc = Scenario.model_validate(steps)
    rows, tls = [], []
    async with OracleServer(cfg) as srv:
        url = srv.url_for("webrtc") if signalling == "json" else srv.url_for("webrtc").replace("/offer", "/whip")
        spec = RunSpec(sc, fixtures, url, "webrtc", calls=1, call_settings=CallSettings(hints=True),
                       call_id_in_url=True, transport_options={"signalling": signalling})
        outcome = await run_calls(spec, rows.extend, on_timeline=tls.append)
        await asyncio.sleep(0.3)
        truth = {t.turn: t for t in srv.truth}
    return rows, truth, outcome, tls[0]


@pytest.mark.parametrize("signalling", ["json", "whip"])
async def test_oracle_over_webrtc_latency_is_truth_plus_a_steady_transport_delay(fixtures, signalling):
    rows, truth, outcome, tl = await measure(fixtures, signalling)
    assert outcome.call_errors == []
    added = [r.latency_ms - truth[r.turn].latency_ms for r in rows]
    # one 20 ms packet + Opus's 6.5 ms + loopback, less the codec's pre-echo in front of an onset
    # that the audible rule walks back into from digital silence (a few ms: 19.5 ms seen once);
    # never negative, never an 80 ms jitter buffer
    assert all(15 <= a <= 45 for a in added), added
    assert max(added) - min(added) < 10
    assert tl.setup_ms is not None and tl.setup_ms > 0  # offer → connected, outside every turn


async def test_an_agent_silent_on_the_wire_until_it_speaks_is_measured_from_the_connection(fixtures):
    # no RTP from the agent until its first reply, nor between replies (a muted track, DTX): the
    # call starts at ICE + DTLS connected, and the measurement is as exact as with comfort silence
    rows, truth, outcome, tl = await measure(fixtures, "json", cfg=OracleConfig(delay_ms="300", webrtc_idle="nothing"))
    assert outcome.call_errors == []
    added = [r.latency_ms - truth[r.turn].latency_ms for r in rows]
    assert len(added) == 2 and all(15 <= a <= 45 for a in added), added
    assert tl.setup_ms is not None and tl.setup_ms > 0
    arrivals = sorted(a.arrival_ns for a in tl.audio)
    first_eos_ns = tl.t0_ns + rows[0].eos_s * 1e9
    assert arrivals[0] > first_eos_ns + 250e6  # nothing came before the first reply (300 ms after EOS)
    assert max(b - a for a, b in zip(arrivals, arrivals[1:])) > 500e6  # nor between the replies


async def test_idle_nothing_withholds_only_settled_silence():
    from harness.transports.webrtc_media import PacedOutput, PacketTrack

    track = PacketTrack()
    out = PacedOutput(track, idle="nothing")
    out.start()
    await asyncio.sleep(0.2)
    assert track._queue.qsize() == 0 and track.packets_withheld >= 8  # silent from the start
    out.put(b"\x10\x27" * 3200)  # 200 ms of a constant: audible, then the codec's tail
    await asyncio.sleep(0.6)
    out.stop()
    sent = track._queue.qsize()
    assert 10 <= sent <= 16, sent  # the audio's frames, then only until the codec settled on silence
    with pytest.raises(ValueError, match="idle 'dtx'"):
        PacedOutput(track, idle="dtx")


async def test_offer_and_answer_carry_only_loopback_candidates():
    async with OracleServer(OracleConfig()) as srv:
        t = WebRtcTransport(srv.url_for("webrtc"))
        await t.connect()
        offer, answer = t._pc.localDescription.sdp, t._pc.remoteDescription.sdp
        await t.close()
    assert candidate_addresses(offer) == {"127.0.0.1"} and candidate_addresses(answer) == {"127.0.0.1"}
    assert "srflx" not in offer + answer and "relay" not in offer + answer  # no STUN/TURN was asked
    assert t.peer_id  # the server's pc_id was kept


async def test_receiver_decodes_on_arrival_with_no_hidden_jitter_buffer_or_thread_hop():
    import time
    async with OracleServer(OracleConfig()) as srv:
        t = WebRtcTransport(srv.url_for("webrtc"), jitter_buffer_ms=40)
        await t.connect()
        receivers = [tr.receiver for tr in t._pc.getTransceivers()]
        assert all(isinstance(r._RTCRtpReceiver__jitter_buffer, _DecodeOnArrival) for r in receivers)
        decoded = []  # (stamp handed on, when it was handed on, samples) for each packet
        forward = t._audio._sink

        def sink(at: int, samples) -> None:
            decoded.append((at, time.perf_counter_ns(), len(samples)))
            forward(at, samples)

        t._audio._sink = sink
        while len(decoded) < 10:
            await asyncio.sleep(0.02)
        # aiortc's decoder thread got nothing: every packet was decoded where it arrived
        idle = [r._RTCRtpReceiver__decoder_queue.qsize() == 0 and r.track._queue.qsize() == 0 for r in receivers]
        await t.close()
    assert idle and all(idle)
    assert all(n == 320 for _, _, n in decoded)  # one 20 ms packet each, at 16 kHz
    # stamped in the packet's handler, plus exactly the explicit buffer, nothing hidden
    assert all(39.0 <= (at - now) / 1e6 <= 40.0 for at, now, _ in decoded), decoded


async def test_stock_media_is_aiortcs_own_path_as_a_baseline():
    async with OracleServer(OracleConfig()) as srv:
        t = WebRtcTransport(srv.url_for("webrtc"), media="stock")
        await t.connect()
        got = []
        async for item in t.received():
            if isinstance(item, AudioReceived):
                got.append(item)
            if len(got) == 5:
                break
        receivers = [tr.receiver for tr in t._pc.getTransceivers()]
        assert not any(isinstance(r._RTCRtpReceiver__jitter_buffer, _DecodeOnArrival) for r in receivers)
        await t.close()
    assert all(0 < len(g.samples) <= 320 for g in got)
    with pytest.raises(ValueError, match="media 'fast': expected lean or stock"):
        WebRtcTransport(srv.url_for("webrtc"), media="fast")


async def test_whip_status_codes():
    async with OracleServer(OracleConfig()) as srv:
        base = f"http://127.0.0.1:{srv.port}"
        t = WebRtcTransport(f"{base}/whip", signalling="whip")
        await t.connect()
        resource = t.resource_url
        assert re.fullmatch(rf"{base}/whip/[0-9a-f]+", resource)
        async with aiohttp.ClientSession() as s:
            async with s.patch(resource) as r:
                assert r.status == 405  # no trickle ICE: all candidates are in the offer
            async with s.post(f"{base}/whip", data="v=0", headers={"Content-Type": "text/plain"}) as r:
                assert r.status == 415
            async with s.post(f"{base}/whip", data="v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n",
                              headers={"Content-Type": "application/sdp"}) as r:
                assert r.status == 400 and "no audio" in await r.text()
            async with s.post(f"{base}/offer", json={"sdp": "v=0\r\n", "type": "offer"}) as r:
                assert r.status == 400 and "no audio" in (await r.json())["error"]
        await t.close()  # DELETE of the resource
        async with aiohttp.ClientSession() as s:
            async with s.delete(resource) as r:
                assert r.status == 404  # already gone


@pytest.mark.parametrize("status, body, content_type, expect", [
    (500, "boom", "text/plain", ("offer answered HTTP 500", "boom")),
    (200, "not json", "text/plain", ("protocol error", "answer is not JSON")),
    (200, '{"sdp": "v=0\\r\\n", "type": "answer"}', "application/json", ("protocol error", "no audio m-line")),
    (200, '{"status": "failed", "meta": {"error": "concurrency_limit_reached"}}', "application/json",
     ("refused", "concurrency_limit_reached")),
    (200, '{"error": {"message": "no capacity", "code": 503}}', "application/json", ("refused", "no capacity")),
])
async def test_bad_answers_fail_the_call_with_a_reason_and_the_run_goes_on(fixtures, status, body, content_type,
                                                                           expect):
    sc = Scenario.model_validate({"version": 1, "name": "s", "steps": [{"say": "bc_yeah_joe"}]})
    rows = []
    async with http_status_server(status, body, content_type) as srv:
        spec = RunSpec(sc, fixtures, f"http://127.0.0.1:{srv.port}/offer", "webrtc", calls=2)
        outcome = await run_calls(spec, rows.extend)
    assert outcome.calls_done == 2 and len(outcome.call_errors) == 2
    kind, detail = expect  # the summary groups errors by the message's head: the kind comes first
    assert all(e.startswith(kind + ":") and detail in e for e in outcome.call_errors), outcome.call_errors
    assert all(r.error and detail in r.error for r in rows)


@pytest.mark.parametrize("value, refused", [("{uuid}", 0), ("{call_id}", 0), ("same-for-all", 3)])
async def test_per_call_offer_fields_never_collide_at_concurrency_4(fixtures, value, refused):
    sc = Scenario.model_validate({"version": 1, "name": "s", "steps": [{"say": "bc_yeah_joe"}, {"wait": "reply"}]})
    rows = []
    async with OracleServer(OracleConfig(delay_ms="200")) as srv:
        async with unique_id_offer_proxy(srv.url_for("webrtc")) as proxy:
            spec = RunSpec(sc, fixtures, f"http://127.0.0.1:{proxy.port}/offer", "webrtc", calls=4, concurrency=4,
                           call_settings=CallSettings(hints=True),
                           transport_options={"extra_fields": {"webrtc_id": value}})
            outcome = await run_calls(spec, rows.extend)
    assert outcome.calls_done == 4
    assert len(outcome.call_errors) == refused, outcome.call_errors
    assert all(e.startswith("refused: webrtc_id already in use") for e in outcome.call_errors)
    if not refused:
        assert len(set(proxy.ids)) == 4
        if value == "{call_id}":
            assert sorted(proxy.ids) == ["c0000", "c0001", "c0002", "c0003"]
        assert all(r.latency_ms is not None for r in rows)


async def test_nothing_listening_is_unreachable():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = WebRtcTransport(f"http://127.0.0.1:{port}/offer")
    with pytest.raises(TargetUnreachable, match="cannot connect"):
        await t.connect()


def test_sdp_audio_check():
    assert sdp_has_audio("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n")
    assert not sdp_has_audio("v=0\r\nm=audio 0 UDP/TLS/RTP/SAVPF 111\r\n")  # rejected m-line
    assert not sdp_has_audio("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n")
