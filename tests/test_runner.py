"""The runner of many calls: a stopped run keeps every turn whose response window had closed,
the calls in flight included."""

from __future__ import annotations

import asyncio

from harness.agent.oracle_config import OracleConfig
from harness.agent.server import OracleServer
from harness.caller.call import CallSettings
from harness.caller.runner import RunSpec, run_calls
from harness.scenario.model import Scenario


async def test_a_stopped_run_keeps_the_closed_turns_of_the_call_in_flight(fixtures):
    steps = []
    for fx in ("bc_yeah_joe", "bc_okay_slt") * 4:
        steps += [{"say": fx}, {"wait": "reply"}]
    sc = Scenario.model_validate({"version": 1, "name": "eight", "steps": steps})
    rows = []
    async with OracleServer(OracleConfig(delay_ms="200", reply_ms=500)) as srv:
        spec = RunSpec(sc, fixtures, srv.url, call_settings=CallSettings(hints=True), call_id_in_url=True)
        task = asyncio.create_task(run_calls(spec, rows.extend))
        await asyncio.sleep(6.0)  # a turn takes ~2 s: the first two or three have closed, the call goes on
        task.cancel()
        outcome = await task
    assert outcome.interrupted and outcome.call_errors == ["run interrupted"]
    turns = [r.turn for r in rows]
    assert 2 <= len(turns) < 8 and turns == list(range(len(turns)))  # the closed ones, in order
    assert all(r.latency_ms is not None and 190 < r.latency_ms < 260 for r in rows)
