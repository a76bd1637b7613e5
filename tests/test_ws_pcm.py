"""ws-pcm against things that are not voice agents: clear errors, never negative numbers."""

import socket

import pytest

from harness.caller.call import CallSettings
from harness.caller.runner import RunSpec, run_calls
from harness.scenario.model import Scenario
from harness.transports import TargetUnreachable
from harness.transports.ws_pcm import WsPcmTransport, check_ws_url, probe
from tests.fakes.agents import http_only_server, silent_ws_agent, ws_handler_server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_nothing_listening_names_the_url():
    url = f"ws://127.0.0.1:{free_port()}/ws"
    with pytest.raises(TargetUnreachable) as e:
        await probe(url)
    assert str(e.value).startswith(url) and "cannot connect" in str(e.value)


async def test_http_server_refusing_the_upgrade():
    async with http_only_server() as srv:
        url = f"ws://127.0.0.1:{srv.port}/agent"
        with pytest.raises(TargetUnreachable) as e:
            await probe(url)
    assert str(e.value).startswith(url) and "refused the WebSocket upgrade" in str(e.value)


@pytest.mark.parametrize("bad", ["http://x/ws", "localhost:8000", "ws://", ""])
def test_bad_urls_say_what_is_wrong(bad):
    with pytest.raises(ValueError, match="ws://"):
        check_ws_url(bad)


async def test_silent_agent_gives_no_response_turns(fixtures):
    sc = Scenario.model_validate({"version": 1, "name": "s", "steps": [
        {"say": "bc_yeah_joe"}, {"wait": "reply"}, {"say": "bc_okay_joe"}]})
    rows = []
    async with silent_ws_agent() as srv:
        spec = RunSpec(sc, fixtures, f"ws://127.0.0.1:{srv.port}/ws", calls=1,
                       call_settings=CallSettings(response_timeout_s=0.6))
        spec.analysis = spec.analysis.__class__(response_timeout_s=0.6)
        outcome = await run_calls(spec, rows.extend)
    assert outcome.calls_done == 1 and len(rows) == 2
    assert all(r.no_response is True and r.latency_ms is None for r in rows)


async def test_malformed_events_are_recorded_and_the_call_goes_on(fixtures):
    from aiohttp import web
    async def handler(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str("{not json")
        await ws.send_str('["a list"]')
        await ws.send_bytes(b"\x01\x00\x02")  # odd length: the last byte waits for its pair
        async for _ in ws:
            pass
        return ws
    got = []
    async with ws_handler_server(handler) as srv:
        t = WsPcmTransport(f"ws://127.0.0.1:{srv.port}/ws")
        await t.connect()

        async def read():
            async for item in t.received():
                got.append(item)
                await t.close()
        import asyncio
        await asyncio.wait_for(read(), 5)
    assert len(t.protocol_errors) == 2 and "malformed JSON" in t.protocol_errors[0]
    assert len(got) == 1 and got[0].samples.tolist() == [1]
