"""Locust users that place turnbench calls (`turnbench load` runs this; so can `locust -f`).

Each Locust process starts one caller engine (harness.load.engine) in a separate, un-patched
process and only asks it for calls. Every measured turn becomes one Locust request
(request_type = transport, name = scenario/turn kind, response_time = latency_ms; false
interruptions, failed barge-ins, missing responses and call errors are failures with a reason).
The exact rows go to the master as custom messages and into one turns.jsonl there; on stop the
master asks every engine to drain before Locust quits, so turns finishing then are kept.
"""

from __future__ import annotations

import itertools
import json
import os

import gevent
from locust import User, events, task
from locust.runners import MasterRunner, WorkerRunner

from harness.load.collector import Collector
from harness.load.engine_client import EngineClient, EngineFailed
from harness.load.results import failure_reason

TURNS_MSG, DRAIN_MSG, DRAINED_MSG = "turnbench_turns", "turnbench_drain", "turnbench_drained"
SCHEDULE_DONE_MSG = "turnbench_schedule_done"
INDEX_STRIDE = 100_000


class TurnFailed(Exception):
    """A turn that measured fine but went wrong for the caller (the reason is the message)."""


class _Process:
    """This Locust process's share: its engine, and (master or local) the collector."""

    def __init__(self) -> None:
        self.client: EngineClient | None = None
        self.collector: Collector | None = None
        self.counter = itertools.count()
        self.drained = False
        self.schedules_done: set[str] = set()
        self.env = None
        self.config: dict | None = None

    def node(self) -> tuple[str, int]:
        runner = self.env.runner
        if isinstance(runner, WorkerRunner):
            return f"w{runner.worker_index}", runner.worker_index + 1
        return "l0", 0

    def engine(self) -> EngineClient:
        if self.client is None:
            opts = self.env.parsed_options
            node, _ = self.node()
            self.client = EngineClient(opts.turnbench_config, node, self.on_call_done)
        return self.client

    def next_call(self) -> tuple[str, int]:
        node, number = self.node()
        n = next(self.counter)
        return f"{node}-{n:05d}", number * INDEX_STRIDE + n

    def on_call_done(self, call_id: str | None, rows: list[dict], error: str | None) -> None:
        if self.config is None:  # parsed once: this runs for every finished call
            self.config = json.loads(self.env.parsed_options.turnbench_config)
        cfg = self.config
        for row in rows:
            reason = failure_reason(row)
            self.env.events.request.fire(
                request_type=cfg.get("transport", "ws-pcm"), name=f"{cfg.get('scenario_label') or 'call'}/{row['kind']}",
                response_time=row.get("latency_ms") or 0, response_length=0,
                exception=TurnFailed(reason) if reason else None, context={"call_id": row.get("call_id")})
        payload = {"call_id": call_id, "rows": rows, "error": error}
        if isinstance(self.env.runner, WorkerRunner):
            self.env.runner.send_message(TURNS_MSG, payload)
        elif self.collector is not None:
            self.collector.add(payload)

    def drain_here(self) -> dict | None:
        if self.drained or self.client is None:
            self.drained = True
            return None
        self.drained = True
        health = self.client.drain(self.env.parsed_options.turnbench_drain_s)
        self.client.close()
        return health


P = _Process()


@events.init_command_line_parser.add_listener
def _options(parser) -> None:
    g = parser  # (argument groups do not take include_in_web_ui)
    g.add_argument("--turnbench-config", default=os.environ.get("TURNBENCH_CONFIG", ""), include_in_web_ui=False,
                   help="engine config JSON (written by `turnbench load`)")
    g.add_argument("--turnbench-out", default="", include_in_web_ui=False, help="run folder (master or local)")
    g.add_argument("--turnbench-think-s", type=float, default=1.0, help="closed loop: pause between a user's calls")
    g.add_argument("--turnbench-arrival-rate", type=float, default=0.0, help="open loop: calls per second, all processes")
    g.add_argument("--turnbench-arrivals", default="poisson", choices=["poisson", "fixed"], help="open loop: process")
    g.add_argument("--turnbench-duration-s", type=float, default=60.0, help="open loop: how long arrivals go on")
    g.add_argument("--turnbench-processes", type=int, default=1, help="open loop: Locust processes sharing the rate")
    g.add_argument("--turnbench-max-in-flight", type=int, default=1000, help="open loop: the harness's own bound")
    g.add_argument("--turnbench-drain-s", type=float, default=60.0, help="on stop: wait this long for calls in flight")
    g.add_argument("--turnbench-seed", type=int, default=0, help="seed of the arrival schedule")


@events.init.add_listener
def _init(environment, **_kw) -> None:
    P.env = environment
    runner = environment.runner
    opts = environment.parsed_options
    if not isinstance(runner, WorkerRunner) and opts is not None and opts.turnbench_out:
        P.collector = Collector(opts.turnbench_out)
    if isinstance(runner, MasterRunner):
        runner.register_message(TURNS_MSG, lambda msg, **_: P.collector and P.collector.add(msg.data))
        runner.register_message(DRAINED_MSG, lambda msg, **_: P.collector and P.collector.engine_drained(msg.data))

        def on_schedule_done(msg, **_):  # open loop: every worker placed its last call → stop (and drain)
            P.schedules_done.add(msg.data["node"])
            if len(P.schedules_done) >= max(1, len(runner.clients.all)):
                gevent.spawn(runner.quit)
        runner.register_message(SCHEDULE_DONE_MSG, on_schedule_done)
    elif opts is not None and opts.turnbench_config:
        P.engine().ensure()  # before the clock starts: engine start-up is not part of --duration
    if isinstance(runner, WorkerRunner):
        def on_drain(msg, **_):
            drained = P.drain_here()
            runner.send_message(DRAINED_MSG, {"node": P.node()[0], "health": drained})
        runner.register_message(DRAIN_MSG, on_drain, concurrent=True)


@events.test_stopping.add_listener
def _stopping(environment, **_kw) -> None:
    """Before Locust stops users: every engine finishes (or abandons) its calls and reports."""
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        expected = len(runner.clients.all)
        runner.send_message(DRAIN_MSG, {})
        with gevent.Timeout(environment.parsed_options.turnbench_drain_s + 40, False):
            while P.collector is not None and len(P.collector.engines) < expected:
                gevent.sleep(0.1)
    elif not isinstance(runner, WorkerRunner):
        drained = P.drain_here()
        if P.collector is not None and drained is not None:
            P.collector.engine_drained({"node": "l0", "health": drained})
    gevent.sleep(1.5)  # Locust's CSV writer runs each second: let it see the drained turns


@events.quitting.add_listener
def _quitting(environment, **_kw) -> None:
    if P.collector is not None:
        P.collector.close()


class ClosedLoopCaller(User):
    """Closed loop: place a call, wait for it to end, think, call again."""

    def wait_time(self) -> float:
        return self.environment.parsed_options.turnbench_think_s

    @task
    def call(self) -> None:
        if P.drained:
            gevent.sleep(1.0)
            return
        call_id, index = P.next_call()
        try:
            P.engine().call(call_id, index).get()
        except EngineFailed as e:
            if P.drained or "draining" in str(e):
                gevent.sleep(1.0)
                return
            self.environment.events.request.fire(request_type="engine", name="start", response_time=0,
                                                 response_length=0, exception=e, context={})
            self.environment.runner.quit()


class OpenLoopCaller(User):
    """Open loop: one per Locust process; its engine places calls at the offered rate, whatever
    the agent does (a slow agent cannot slow the offered load)."""

    @task
    def arrivals(self) -> None:
        opts = self.environment.parsed_options
        node, number = P.node()
        try:
            P.engine().arrivals(opts.turnbench_arrival_rate / max(1, opts.turnbench_processes), opts.turnbench_arrivals,
                                opts.turnbench_duration_s, opts.turnbench_seed * 1000 + number, node,
                                number * INDEX_STRIDE, opts.turnbench_max_in_flight)
        except EngineFailed as e:
            self.environment.events.request.fire(request_type="engine", name="start", response_time=0,
                                                 response_length=0, exception=e, context={})
            self.environment.runner.quit()
            return
        P.engine().schedule_done.wait()
        if isinstance(self.environment.runner, WorkerRunner):
            self.environment.runner.send_message(SCHEDULE_DONE_MSG, {"node": node})
        else:
            gevent.spawn(self.environment.runner.quit)
        while True:
            gevent.sleep(3600)
