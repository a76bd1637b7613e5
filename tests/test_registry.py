"""The transport registry: adding a transport is its modules plus one registration, and every
place that knows transports (scenario model, caller, agent server, URL checks) reads it."""

from __future__ import annotations

import pytest

from harness.agent.oracle_config import OracleConfig
from harness.agent.server import OracleServer
from harness.agent.targets import check_target
from harness.errors import InputError
from harness.scenario.model import Defaults
from harness.transports import make_transport
from harness.transports.registry import (
    _REGISTRY,
    TransportEntry,
    TransportOption,
    register,
    transport_entry,
    transport_names,
    transport_settings,
)
from harness.transports.ws_pcm import AiohttpWsPcmTransport, WsPcmTransport


@pytest.fixture
def echo_transport():
    """A test double: ws-pcm's classes registered again under another name and path."""
    entry = register(TransportEntry(
        name="ws-echo", summary="test double", caller="harness.transports.ws_pcm:WsPcmTransport",
        url_schemes=("ws",), url_example="ws://HOST:PORT/echo", agent_path="/echo",
        agent_endpoint="tests.test_registry:EchoEndpoint",
        options=(TransportOption("--echo-gain", "echo_gain", kind="float", default=1.0, help="gain"),),
        settings=lambda v: {"headers": {"X-Gain": str(v["echo_gain"])}}))
    yield entry
    _REGISTRY.pop("ws-echo")


from harness.agent.links.ws_pcm import WsPcmEndpoint  # noqa: E402


class EchoEndpoint(WsPcmEndpoint):
    """ws-pcm's agent side served at /echo."""

    def mount(self, app) -> None:
        pass

    def upgrades(self) -> dict:
        return {"/echo": self._take_over}


def test_the_built_in_transports_are_registered_in_order():
    assert transport_names()[:3] == ("ws-pcm", "twilio", "webrtc")
    assert transport_entry("webrtc").requires == ("aiortc", "webrtc") and transport_entry("ws-pcm").requires is None


def test_an_unknown_transport_is_an_input_error_listing_the_known_ones():
    with pytest.raises(InputError, match="unknown transport 'carrier-pigeon'.*ws-pcm, twilio, webrtc"):
        transport_entry("carrier-pigeon")
    with pytest.raises(ValueError, match="unknown transport 'carrier-pigeon'"):
        Defaults(transport="carrier-pigeon")


def test_a_name_is_registered_once():
    with pytest.raises(ValueError, match="already registered"):
        register(transport_entry("ws-pcm"))


def test_urls_are_checked_per_transport():
    check_target("ws://127.0.0.1:9/ws", "twilio")
    check_target("http://127.0.0.1:9/offer", "webrtc")
    with pytest.raises(InputError, match=r"--target .*expected http://HOST:PORT/PATH.*--transport webrtc"):
        check_target("ws://127.0.0.1:9/ws", "webrtc")
    with pytest.raises(InputError, match="expected ws://HOST:PORT/PATH"):
        check_target("localhost:9", "ws-pcm")


def test_make_transport_picks_the_class_and_its_baseline_variant():
    assert type(make_transport("ws-pcm", "ws://127.0.0.1:9/ws")) is WsPcmTransport
    assert type(make_transport("ws-pcm", "ws://127.0.0.1:9/ws", client="aiohttp")) is AiohttpWsPcmTransport
    with pytest.raises(InputError, match="client 'carrier'"):
        make_transport("ws-pcm", "ws://127.0.0.1:9/ws", client="carrier")


async def test_a_registered_transport_is_served_by_the_built_in_agents_and_called(echo_transport):
    from harness.audio.fixtures import FixtureLibrary
    from harness.caller.call import CallSettings
    from harness.caller.runner import RunSpec, run_calls
    from harness.metrics.turns import AnalysisSettings
    from harness.resources import resolve_scenario
    from harness.scenario import load_scenario

    assert "ws-echo" in transport_names()
    assert transport_settings("ws-echo", {"echo_gain": 2.0}) == {"headers": {"X-Gain": "2.0"}}
    Defaults(transport="ws-echo")  # the scenario model accepts it
    lib = FixtureLibrary.load()
    sc = load_scenario(resolve_scenario("smoke"), lib).scenario
    async with OracleServer(OracleConfig(delay_ms="250", reply_ms=400)) as srv:
        assert "ws-echo" in srv.health()["transports"]
        url = srv.url_for("ws-echo")
        assert url.endswith("/echo")
        rows = []
        spec = RunSpec(sc, lib, url, "ws-echo", 1, 1, CallSettings(hints=True), AnalysisSettings(),
                       call_id_in_url=True, transport_options=transport_settings("ws-echo", {}))
        await run_calls(spec, lambda results: rows.extend(results), lambda outcome: None)
    assert len(rows) == 2
    assert all(r.latency_ms is not None and 240 < r.latency_ms < 320 for r in rows), [r.latency_ms for r in rows]
