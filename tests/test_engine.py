"""The load engine: its socket protocol, open-loop arrivals against a slow agent, drain, saturation."""

import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path

import pytest

from harness.agent.oracle_config import OracleConfig
from harness.agent.server import OracleServer
from harness.audio.fixtures import FixtureLibrary
from harness.load.engine import Engine, arrival_offsets_s, receive_jitter_ms
from harness.load.engine_config import EngineConfig, EngineConfigError
from harness.resources import default_fixtures_dir
from harness.scenario import load_scenario

REPO = Path(__file__).resolve().parents[1]
QUICK = ("version: 1\nname: quick\ndefaults:\n  target: oracle\nsteps:\n"
         "  - say: bc_yeah_joe\n  - wait: reply\n  - say: bc_okay_slt\n  - wait: reply\n")


@pytest.fixture
def quick(tmp_path):
    p = tmp_path / "quick.yaml"
    p.write_text(QUICK)
    return p


def config(scenario: Path, url: str, **kw) -> EngineConfig:
    lib = FixtureLibrary.load()
    sha = load_scenario(scenario, lib).sha256
    return EngineConfig(scenario_path=str(scenario), fixtures_dir=str(default_fixtures_dir()), target_url=url,
                        call_settings={"hints": True, "seed": 1}, call_id_in_url=True, scenario_sha256=sha,
                        fixtures_digest=lib.digest(), scenario_label="quick", **kw)


def test_arrival_schedules():
    fixed = arrival_offsets_s(4.0, "fixed", 2.0, 0)
    assert fixed == pytest.approx([0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75])
    pois = arrival_offsets_s(50.0, "poisson", 200.0, 7)
    assert 9000 < len(pois) < 11000  # rate 50/s for 200 s: 10 000 ± 1 %-ish
    gaps = [b - a for a, b in zip(pois, pois[1:])]
    assert sum(gaps) / len(gaps) == pytest.approx(0.02, rel=0.05)
    assert arrival_offsets_s(50.0, "poisson", 200.0, 7) == pois  # seeded
    with pytest.raises(ValueError, match="expected poisson or fixed"):
        arrival_offsets_s(1.0, "bursty", 1.0, 0)


def test_receive_jitter_counts_uneven_arrivals_within_a_stream_only():
    ms = 1_000_000
    arrivals = [0, 20 * ms, 43 * ms, 60 * ms, 400 * ms, 420 * ms]  # 3 ms late, 3 ms early, a pause, on time
    assert receive_jitter_ms(arrivals, [320] * 6).tolist() == [0.0, 3.0, 3.0, 0.0]


def test_config_that_does_not_match_this_machine_is_refused(quick, tmp_path):
    cfg = config(quick, "ws://127.0.0.1:9/ws")
    cfg.scenario_sha256 = "0" * 64
    with pytest.raises(EngineConfigError, match="differs from the master's scenario"):
        cfg.run_spec()
    with pytest.raises(EngineConfigError, match="config"):
        EngineConfig.from_json('{"scenario_path": "x"}')


async def test_engine_process_speaks_its_protocol_over_a_unix_socket(quick, tmp_path):
    async with OracleServer(OracleConfig(delay_ms="300")) as srv:
        cfg_path = tmp_path / "engine.json"
        cfg_path.write_text(config(quick, srv.url).to_json())
        sock = str(tmp_path / "e.sock")
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "harness.load.engine", "--socket", sock,
                                                    "--node", "t0", "--config", str(cfg_path), cwd=REPO,
                                                    stdout=asyncio.subprocess.PIPE)
        try:
            assert (await asyncio.wait_for(proc.stdout.readline(), 60)).strip() == b"ready"
            reader, writer = await asyncio.open_unix_connection(sock)

            async def recv() -> dict:
                return json.loads(await asyncio.wait_for(reader.readline(), 60))

            assert (await recv())["op"] == "ready"
            writer.write(b'{"op": "call", "id": "t0-00000", "index": 0}\nnot json\n')
            await writer.drain()
            bad = await recv()
            assert bad["op"] == "error" and "not JSON" in bad["why"]
            done = await recv()
            assert done["op"] == "call_done" and done["id"] == "t0-00000" and done["error"] is None
            assert [r["kind"] for r in done["rows"]] == ["utterance", "utterance"]
            assert all(r["schema"] == "turnbench.turn/2" and r["call_id"] == "t0-00000" for r in done["rows"])
            assert all(abs(r["latency_ms"] - 300) < 10 for r in done["rows"])
            writer.write(b'{"op": "drain", "timeout_s": 5}\n{"op": "call", "id": "late", "index": 1}\n')
            await writer.drain()
            drained = await recv()
            assert drained["op"] == "drained" and drained["abandoned"] == 0
            assert drained["health"]["calls_done"] == 1 and drained["health"]["node"] == "t0"
            assert 0 <= drained["health"]["recv_jitter_ms_p50"] < 5  # the oracle paces 20 ms chunks
            assert (await recv()) == {"op": "refused", "id": "late", "why": "draining"}
            writer.close()
            assert await asyncio.wait_for(proc.wait(), 30) == 0  # the client went away: the engine ends
        finally:
            if proc.returncode is None:
                proc.kill()


async def test_open_loop_holds_the_offered_rate_when_the_agent_is_slow(quick):
    # each call lasts > 5 s (2.5 s to answer each turn): a closed loop of one caller would place one call
    async with OracleServer(OracleConfig(delay_ms="2500", reply_ms="1500")) as srv:
        engine = Engine(config(quick, srv.url), "t")
        await engine.executor.analyzer.start()
        try:
            t0 = time.perf_counter()
            await engine._arrivals({"rate_per_s": 4.0, "process": "fixed", "duration_s": 2.0, "prefix": "o"})
            placing_s = time.perf_counter() - t0
            assert engine.arrivals["offered"] == engine.arrivals["started"] == 8
            assert placing_s < 2.2  # the schedule never waited for the agent
            drained = await engine._drain(60.0)
        finally:
            engine.executor.analyzer.close()
    rows = engine.executor.outcome
    assert drained["abandoned"] == 0 and rows.calls_done == 8
    h = drained["health"]
    assert h["arrivals"] == {"offered": 8, "started": 8, "dropped": 0, "rate_per_s": 4.0, "process": "fixed"}


@contextlib.asynccontextmanager
async def three_slow_calls(scenario: Path, prefix: str):
    """An engine with three calls placed against an oracle that answers after 3 s; yields (oracle, engine)."""
    async with OracleServer(OracleConfig(delay_ms="3000")) as srv:
        engine = Engine(config(scenario, srv.url), "t")
        await engine.executor.analyzer.start()
        try:
            for i in range(3):
                engine._start_call(f"{prefix}{i}", i)
            yield srv, engine
        finally:
            engine.executor.analyzer.close()


async def test_drain_deadline_abandons_calls_and_hangs_up(quick):
    async with three_slow_calls(quick, "a") as (srv, engine):
        await asyncio.sleep(0.8)
        assert srv.health()["calls_active"] == 3
        drained = await engine._drain(0.3)
        assert drained["abandoned"] == 3 and not engine.calls
        assert engine.outcome.call_errors == ["run interrupted"] * 3
        for _ in range(50):
            if srv.health()["calls_active"] == 0:
                break
            await asyncio.sleep(0.05)
        assert srv.health()["calls_active"] == 0  # no stale calls left on the agent


async def test_a_saturated_engine_says_so(quick):
    """An event loop kept busy (as by too many callers) makes frames late: health must flag it."""
    async with OracleServer(OracleConfig(delay_ms="300")) as srv:
        engine = Engine(config(quick, srv.url), "t")
        await engine.executor.analyzer.start()
        lag = asyncio.create_task(engine.lag.run())

        async def hog():  # 25 ms of blocking work every 30 ms
            while True:
                time.sleep(0.025)
                await asyncio.sleep(0.005)

        hogger = asyncio.create_task(hog())
        try:
            await engine._call("s0", 0, None)
        finally:
            hogger.cancel()
            lag.cancel()
            engine.executor.analyzer.close()
        h = engine.health()
        assert h["overloaded"] is True
        assert any("send lateness" in w for w in h["overloaded_why"]), h["overloaded_why"]
        assert h["send_lateness_ms_p99"] > 5


async def test_window_counts_every_frame_live_calls_sent_in_it(quick):
    async with three_slow_calls(quick, "w") as (_, engine):
        await asyncio.sleep(0.5)
        engine.window_start()
        before = {cid: len(call.timeline.send_ns) for cid, (call, _) in engine.executor.live.items()}
        await asyncio.sleep(1.0)
        w = engine.window_stats()
        after = {cid: len(call.timeline.send_ns) for cid, (call, _) in engine.executor.live.items()}
        await engine._drain(0.3)
    assert w["calls_live"] == 3
    assert w["frames"] == sum(after[c] - before[c] for c in after)
    assert 3 * 45 <= w["frames"] <= 3 * 55  # 50 frames a second per call
    assert 0 <= w["send_lateness_ms_p50"] <= w["send_lateness_ms_p99"]
