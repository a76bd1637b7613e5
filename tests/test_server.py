"""The agent server's token: every transport's route wants it, /health does not, and turnbench's
callers send it."""

from __future__ import annotations

import aiohttp

from harness.agent.oracle_config import OracleConfig
from harness.agent.server import OracleServer
from harness.caller.call import CallSettings
from harness.caller.runner import RunSpec, run_calls
from harness.scenario.model import Scenario
from harness.transports.base import auth_headers
from tests.test_front_door import raw_request, upgrade_head


async def status_line(port: int, head: str) -> bytes:
    """The first line the server answers a request head with (an upgrade stays open after it)."""
    import asyncio
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head.encode())
    try:
        return await asyncio.wait_for(reader.readline(), 5)
    finally:
        writer.close()


SMOKE = {"version": 1, "name": "one", "steps": [{"say": "bc_yeah_joe"}, {"wait": "reply"}]}


async def test_every_route_but_health_wants_the_token():
    srv = OracleServer(OracleConfig())
    srv.token = "s3cret"
    async with srv:
        refused = await raw_request(srv.port, upgrade_head())
        assert refused.startswith(b"HTTP/1.1 401") and b"Bearer" in refused
        head = upgrade_head().replace("\r\n\r\n", "\r\nAuthorization: Bearer s3cret\r\n\r\n")
        assert (await status_line(srv.port, head)).startswith(b"HTTP/1.1 101")
        assert (await status_line(srv.port, upgrade_head(path="/ws?token=s3cret"))).startswith(b"HTTP/1.1 101")
        wrong = upgrade_head().replace("\r\n\r\n", "\r\nAuthorization: Bearer s3cre\r\n\r\n")
        assert (await status_line(srv.port, wrong)).startswith(b"HTTP/1.1 401")
        async with aiohttp.ClientSession() as s:
            async with s.get(f"http://127.0.0.1:{srv.port}/health") as r:
                assert r.status == 200
            for method, path in (("GET", "/media-stream"), ("POST", "/offer"), ("POST", "/whip"), ("GET", "/ws")):
                async with s.request(method, f"http://127.0.0.1:{srv.port}{path}") as r:
                    assert r.status == 401, (method, path)


async def test_callers_send_the_token_on_every_transport(fixtures):
    sc = Scenario.model_validate(SMOKE)
    srv = OracleServer(OracleConfig(delay_ms="250", reply_ms=400))
    srv.token = "s3cret"
    async with srv:
        for transport in ("ws-pcm", "twilio", "webrtc"):
            for headers, heard in ((auth_headers("s3cret"), True), ({}, False)):
                rows = []
                spec = RunSpec(sc, fixtures, srv.url_for(transport), transport, call_settings=CallSettings(hints=True),
                               call_id_in_url=True, headers=headers)
                outcome = await run_calls(spec, rows.extend)
                assert (rows[0].latency_ms is not None) == heard, (transport, headers, outcome.call_errors)
                if not heard:
                    assert "401" in outcome.call_errors[0], (transport, outcome.call_errors)
