"""Network impairment: profiles and overrides, exact added delay, seeded loss, order kept."""

import asyncio
import random

import numpy as np
import pytest

from harness.agent.oracle_config import OracleConfig
from harness.agent.server import OracleServer
from harness.caller.call import CallSettings
from harness.caller.runner import RunSpec, run_calls
from harness.records.received import AudioReceived
from harness.scenario.model import Scenario
from harness.transports.base import Transport
from harness.transports.impair import PROFILES, ImpairedTransport, ImpairmentProfile, _Path, resolve_profile


def test_profiles_and_overrides():
    assert resolve_profile(None) is None
    assert resolve_profile("pstn").mulaw and resolve_profile("pstn").delay_ms >= 150
    wifi = resolve_profile("wifi", delay_ms=30)
    assert wifi.delay_ms == 30 and wifi.jitter_ms == PROFILES["wifi"].jitter_ms and wifi.name == "wifi+custom"
    custom = resolve_profile(None, jitter_ms=4)
    assert custom.name == "custom" and custom.jitter_ms == 4 and custom.delay_ms == 0
    with pytest.raises(ValueError, match="'moon': unknown profile .available: lan"):
        resolve_profile("moon")
    assert "each way" in PROFILES["4g"].describe()


def test_jitter_keeps_order_unless_asked_and_loss_rate_is_seeded():
    p = ImpairmentProfile(delay_ms=20, jitter_ms=10, loss=0.1, burst=3)
    a, b = _Path(p, random.Random("s")), _Path(p, random.Random("s"))
    times = [a.release_ns(i * 20_000_000) for i in range(2000)]
    assert times == sorted(times)
    assert [b.release_ns(i * 20_000_000) for i in range(2000)] == times  # same seed, same path
    lost = [a.lost() for _ in range(20000)]
    assert 0.08 < np.mean(lost) < 0.12
    runs = [len(r) for r in "".join("x" if x else "." for x in lost).split(".") if r]
    assert 2.4 < np.mean(runs) < 3.6  # bursts of ~3 packets
    r = _Path(ImpairmentProfile(delay_ms=20, jitter_ms=10, reorder=True), random.Random(1))
    rt = [r.release_ns(i * 20_000_000) for i in range(2000)]
    assert rt != sorted(rt)


async def test_downlink_delay_and_loss_are_exact_and_logged():
    class Source(Transport):  # a test double transport handing over two chunks at known times
        name = "fake"

        async def connect(self):
            pass

        async def send_audio(self, pcm16):
            pass

        async def send_event(self, event):
            pass

        async def received(self):
            yield AudioReceived(1_000, np.full(320, 1000, np.int16))
            yield AudioReceived(2_000, np.full(320, 1000, np.int16))

        async def close(self):
            pass

    t = ImpairedTransport(Source(), ImpairmentProfile(delay_ms=5.0, loss=0.5), seed=3)
    await t.connect()
    got = [x async for x in t.received()]
    await t.close()
    assert [g.arrival_ns for g in got] == [1_000 + 5_000_000, 2_000 + 5_000_000]
    assert t.log.down_added_ns == [5_000_000, 5_000_000]
    for g, lost in zip(got, t.log.down_lost):
        assert (g.samples == 0).all() == lost  # a lost packet is silence of the same length


@pytest.mark.slow
async def test_measured_latency_is_truth_plus_the_path_delay(fixtures):
    sc = Scenario.model_validate({"version": 1, "name": "s", "steps": [
        {"say": "utt_01_joe"}, {"wait": "reply"}, {"say": "utt_04_awb"}, {"wait": "reply"}]})
    rows = []
    async with OracleServer(OracleConfig(delay_ms="250")) as srv:
        spec = RunSpec(sc, fixtures, srv.url, calls=1, call_settings=CallSettings(hints=True), call_id_in_url=True,
                       impairment=ImpairmentProfile(delay_ms=40.0))
        await run_calls(spec, rows.extend)
        await asyncio.sleep(0.2)
        truth = {t.turn: t for t in srv.truth}
    for r in rows:
        assert abs(r.latency_ms - truth[r.turn].latency_ms - 80.0) < 3.0  # 40 ms up + 40 ms down
