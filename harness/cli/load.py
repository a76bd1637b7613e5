"""`turnbench load`: many real-time callers through Locust, on one machine or many."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import click

from harness.caller.call import plan_turns
from harness.cli.common import EXIT_FAILED, EXIT_INTERRUPTED, Finite, fail, summary_table
from harness.cli.options import option_group, output_options, target_options
from harness.errors import MissingDependency
from harness.results.folder import RunFolder, now_iso
from harness.service.finish import apply_thresholds, write_report
from harness.service.inputs import RunInputs
from harness.service.session import label_providers
from harness.service.signals import Stop, stop_on_signals

MAX_DURATION_S = 7 * 24 * 3600.0


def parse_duration(text: str) -> float:
    """'90', '90s', '5m', '1h30m' → seconds: more than 0, at most a week."""
    t = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", t):
        seconds = float(t)
    else:
        parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", t)
        if not parts or "".join(a + b for a, b in parts) != t:
            raise click.BadParameter(f"{text!r}: expected seconds or a duration like 90s, 5m, 1h30m")
        seconds = sum(float(a) * {"h": 3600, "m": 60, "s": 1}[b] for a, b in parts)
    if not 0 < seconds <= MAX_DURATION_S:
        raise click.BadParameter(f"{text!r}: a duration is more than 0 s and at most 7 days")
    return seconds


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def locustfile() -> str:
    return importlib.util.find_spec("harness.load.locustfile").origin


@dataclass(frozen=True)
class LoadShape:
    """How calls are offered: closed loop (users who call again) or open loop (an arrival rate)."""

    users: int
    spawn_rate: float | None
    duration_s: float
    think_s: float
    arrival_rate: float | None
    arrivals: str
    max_in_flight: int
    drain_s: float

    @property
    def mode(self) -> str:
        return "open" if self.arrival_rate else "closed"


@dataclass(frozen=True)
class LoadNodes:
    """Where Locust runs: worker processes here, or a master for workers on other machines."""

    processes: int
    as_master: bool
    expect_workers: int
    master_bind_host: str
    master_port: int | None
    as_worker: bool
    master_host: str
    web: bool
    web_port: int

    @property
    def workers(self) -> int:
        return self.expect_workers if self.as_master else self.processes


shape_options = option_group([
    click.option("--users", "-u", type=click.IntRange(min=1), default=10, show_default=True,
                 help="Closed loop: simultaneous callers (each calls again after --think-s)."),
    click.option("--spawn-rate", "-r", type=Finite(min=0.01, max=10_000), default=None,
                 help="Closed loop: callers started per second (default: all within 5 s)."),
    click.option("--duration", "-d", "duration", default="60s", show_default=True, metavar="T",
                 help="How long calls are placed (90, 90s, 5m); calls in flight then finish (see --drain-s)."),
    click.option("--think-s", type=Finite(min=0, max=3600), default=1.0, show_default=True,
                 help="Closed loop: pause between one caller's calls."),
    click.option("--arrival-rate", type=Finite(min=0.001, max=10_000), default=None, metavar="CALLS_PER_S",
                 help="Open loop: place calls at this rate whatever the agent does (instead of --users)."),
    click.option("--arrivals", type=click.Choice(["poisson", "fixed"]), default="poisson", show_default=True,
                 help="Open loop: exponential gaps (Poisson) or fixed spacing."),
    click.option("--max-in-flight", type=click.IntRange(min=1), default=1000, show_default=True,
                 help="Open loop: the harness's bound on calls in flight per process; arrivals beyond it are "
                      "counted as dropped, never delayed."),
    click.option("--drain-s", type=Finite(min=0, max=3600), default=60.0, show_default=True,
                 help="At the end: wait this long for calls in flight; the closed turns of the rest are kept."),
], {"shape": lambda v: LoadShape(v["users"], v["spawn_rate"], parse_duration(v["duration"]), v["think_s"],
                                 v["arrival_rate"], v["arrivals"], v["max_in_flight"], v["drain_s"])})

node_options = option_group([
    click.option("--processes", "-p", type=click.IntRange(min=1), default=1, show_default=True,
                 help="Locust worker processes on this machine (a master plus N workers when N > 1), each with "
                      "its own caller engine."),
    click.option("--master", "as_master", is_flag=True,
                 help="Run only Locust's master here and wait for --expect-workers workers (other machines run "
                      "`turnbench load --worker --master-host THIS_HOST`)."),
    click.option("--expect-workers", type=click.IntRange(min=1), default=1, show_default=True,
                 help="With --master: workers to wait for before starting."),
    click.option("--master-bind-host", default="127.0.0.1", show_default=True,
                 help="With --master: where the master listens (0.0.0.0 for other machines: Locust's master "
                      "port accepts anyone who reaches it, so only on a trusted network)."),
    click.option("--master-port", type=click.IntRange(1, 65535), default=None,
                 help="The master's port (default 5557 for --master and --worker; a free one for --processes)."),
    click.option("--worker", "as_worker", is_flag=True, help="Run a Locust worker (and its engine) for a master."),
    click.option("--master-host", default="127.0.0.1", show_default=True, help="With --worker: the master's host."),
    click.option("--web", is_flag=True, help="Open Locust's web UI (turnbench's turns are its requests) instead "
                                             "of running headless; stop the test there, then Ctrl-C."),
    click.option("--web-port", type=click.IntRange(1, 65535), default=8089, show_default=True,
                 help="With --web: Locust's web UI port on 127.0.0.1."),
], {"nodes": lambda v: LoadNodes(**v)})


@click.command()
@click.argument("scenario", required=False)
@shape_options
@node_options
@target_options
@click.option("--threshold", "thresholds", multiple=True, metavar="EXPR",
              help="Fail (exit 1) unless the summary meets EXPR (as `run`; adds to the scenario's).")
@click.option("--seed", type=int, default=None, help="Seed for fixture picks and arrivals (default: scenario).")
@output_options()
def load(scenario: str | None, shape: LoadShape, nodes: LoadNodes, target: str | None, transport: str | None,
         transport_values: dict, impairment, agent_args: str, oracle_opts: tuple[str, ...], agent_token: str | None,
         thresholds: tuple[str, ...], seed: int | None, out_dir: Path, fixtures_dir: Path | None) -> None:
    """Load-test an agent with many real-time callers, driven by Locust.

    Closed loop (--users N, each calling again after --think-s) or open loop (--arrival-rate:
    calls start on schedule however slow the agent is; each call's start lag against its
    intended start is recorded). Every Locust process runs turnbench's own caller engine in a
    separate process that gevent never patches, so Locust's patching cannot touch the timing.
    The run folder is `turnbench run`'s (turns.jsonl with exact numbers from every worker,
    summary.json, report.html), plus engines.json (each engine's health), calls.jsonl and
    Locust's own CSV and HTML.
    """
    if importlib.util.find_spec("locust") is None:
        raise MissingDependency("turnbench load needs Locust: pip install 'turnbench[load]'")
    if nodes.as_worker:
        raise SystemExit(_run_locust_worker(nodes.master_host, nodes.master_port or 5557))
    if scenario is None:
        fail("missing SCENARIO (only --worker runs without one)")
    if nodes.as_master and nodes.processes > 1:
        fail("--master runs the master only: start workers with --worker (drop --processes)")
    if nodes.as_master and nodes.master_bind_host not in ("127.0.0.1", "::1", "localhost"):
        click.echo(f"turnbench: warning: Locust's master listens on {nodes.master_bind_host}:{nodes.master_port or 5557} "
                   "and accepts any worker that reaches it (no authentication): use it on a trusted network only, "
                   "or tunnel the workers in (ssh -L)", err=True)
    inputs = RunInputs.resolve(scenario, fixtures_dir=fixtures_dir, target=target, transport=transport,
                               transport_values=transport_values, impairment=impairment, oracle_opts=oracle_opts,
                               agent_args=agent_args, thresholds=thresholds, seed=seed, agent_token=agent_token)
    inputs = inputs.with_preload(shape.users if shape.mode == "closed" else 4)
    folder = RunFolder.create(out_dir, f"load-{inputs.name}")
    folder.close()
    job = LoadJob(inputs, shape, nodes, folder.path)
    try:
        code, meta, truth = asyncio.run(job.run())
    except (KeyboardInterrupt, asyncio.CancelledError):  # stopped before Locust started
        code, meta, truth = job.stop.exit_code, job.run_meta, None
    if job.stop.signal is not None:
        code = job.stop.exit_code
    summary = job.finish(code, meta, truth)
    click.echo(summary_table(summary))
    click.echo(load_table(summary))
    click.echo(f"run folder: {folder.path} (Locust's own: locust.html, locust_stats.csv)")
    if job.stop.signal is not None:
        fail(f"interrupted: every turn measured so far is in {folder.path}", code)
    if code not in (0, None):
        fail(f"Locust exited with {code}; see {folder.path / 'locust.log'}",
             EXIT_INTERRUPTED if code == 130 else EXIT_FAILED)
    raise SystemExit(EXIT_FAILED if any(not c["pass"] for c in summary["thresholds"]) else 0)


class LoadJob:
    """One load run: the target, Locust's master and workers, progress, the summary."""

    def __init__(self, inputs: RunInputs, shape: LoadShape, nodes: LoadNodes, path: Path):
        self.inputs, self.shape, self.nodes, self.path = inputs, shape, nodes, path
        self.master_port = nodes.master_port or (5557 if nodes.as_master else free_port())
        self.stop = Stop()
        self.run_meta: dict = {}
        """run.json as written when the target was up (kept for the end, however the run ends)."""
        self.meta = {"mode": shape.mode, "users": None if shape.mode == "open" else shape.users,
                     "spawn_rate": None if shape.mode == "open" else self.rate, "think_s": None if shape.mode ==
                     "open" else shape.think_s, "arrival_rate_per_s": shape.arrival_rate,
                     "arrival_process": shape.arrivals if shape.mode == "open" else None,
                     "duration_s": shape.duration_s, "processes": nodes.workers, "distributed": nodes.as_master,
                     "drain_s": shape.drain_s}

    @property
    def rate(self) -> float:
        s = self.shape
        return self.nodes.workers if s.mode == "open" else (s.spawn_rate or max(1.0, s.users / 5.0))

    def engine_config(self, url: str):
        from harness.load.engine_config import EngineConfig
        i, st = self.inputs, self.inputs.settings
        return EngineConfig(
            scenario_path=str(i.loaded.path.resolve()), fixtures_dir=str(i.fixtures.directory.resolve()), target_url=url,
            transport=i.transport, transport_options=i.transport_options,
            impairment=i.impairment.to_json() if i.impairment else None,
            call_settings={"response_timeout_s": st.response_timeout_s, "reply_silence_ms": st.reply_silence_ms,
                           "hints": st.hints, "seed": st.seed},
            response_timeout_s=st.response_timeout_s, barge_in_threshold_ms=i.analysis.barge_in_threshold_ms,
            call_id_in_url=st.hints, scenario_sha256=i.loaded.sha256, fixtures_digest=i.fixtures.digest(),
            scenario_label=i.name, run_started_unix=time.time())

    def locust_args(self, cfg) -> tuple[list[str], list[str]]:
        """The master's (or single process's) command line, and the arguments every process shares."""
        s, n = self.shape, self.nodes
        common = ["--turnbench-config", cfg.to_json(), "--turnbench-think-s", str(s.think_s),
                  "--turnbench-arrivals", s.arrivals, "--turnbench-duration-s", str(s.duration_s),
                  "--turnbench-processes", str(n.workers), "--turnbench-max-in-flight", str(s.max_in_flight),
                  "--turnbench-drain-s", str(s.drain_s), "--turnbench-seed", str(self.inputs.settings.seed),
                  "--turnbench-arrival-rate", str(s.arrival_rate or 0)]
        loc_users = n.workers if s.mode == "open" else s.users
        head = ["--web-host", "127.0.0.1", "--web-port", str(n.web_port)] if n.web else \
            ["--headless", "-u", str(loc_users), "-r", str(self.rate),
             # open loop ends when the schedule does; -t is only a safety bound there
             "-t", f"{int(round(s.duration_s)) + (120 if s.mode == 'open' else 0)}s"]
        args = [sys.executable, "-m", "locust", "-f", locustfile(), *head, *common,
                "--turnbench-out", str(self.path), "--csv", str(self.path / "locust"),
                "--html", str(self.path / "locust.html"), "--exit-code-on-error", "0",
                "--stop-timeout", "0", "--loglevel", "INFO"]
        if n.as_master or n.workers > 1:
            args += ["--master", "--expect-workers", str(n.workers), "--master-bind-host", n.master_bind_host,
                     "--master-bind-port", str(self.master_port)]
        args.append("OpenLoopCaller" if s.mode == "open" else "ClosedLoopCaller")
        return args, common

    async def run(self) -> tuple[int, dict, dict | None]:
        """Start the target, run Locust to the end; Locust's exit code, run.json, the oracle's truth.
        SIGINT or SIGTERM stops Locust (its calls in flight keep their closed turns)."""
        with stop_on_signals(self.stop):
            return await self._run()

    async def _run(self) -> tuple[int, dict, dict | None]:
        inputs = self.inputs
        self.run_meta = inputs.metadata(load=self.meta)
        async with inputs.open_target(self.path / "agent.log") as resolved:
            cfg = self.engine_config(resolved.url)
            meta = self.run_meta = inputs.metadata(load=self.meta, agent=inputs.agent_meta(resolved))
            RunFolder(self.path).write_json("run.json", {**meta, "status": "running"})
            code = await self._locust(*self.locust_args(cfg))
            truth = None
            if resolved.oracle is not None:  # the oracle's own account of every turn, to score the measurement
                from harness.agent.oracle import truth_to_json
                await asyncio.sleep(0.3)  # let it see the last hang-ups
                truth = {(t.call_id, t.turn): truth_to_json(t) for t in resolved.oracle.truth}
            return code, meta, truth

    async def _locust(self, args: list[str], common: list[str]) -> int:
        from harness.load.results import TurnsTail
        n, s = self.nodes, self.shape
        log = (self.path / "locust.log").open("ab")
        # the engines read the agent's token from their environment: never from argv or a file
        env = {**os.environ, "TURNBENCH_AGENT_TOKEN": self.inputs.token} if self.inputs.token else None
        procs = [await asyncio.create_subprocess_exec(*args, stdout=log, stderr=log, env=env)]
        if n.workers > 1 and not n.as_master:
            for _ in range(n.workers):
                procs.append(await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "locust", "-f", locustfile(), "--worker", "--master-host", "127.0.0.1",
                    "--master-port", str(self.master_port), *common, stdout=log, stderr=log, env=env))
        click.echo(f"load: {s.mode} loop, {s.users if s.mode == 'closed' else s.arrival_rate} "
                   f"{'callers' if s.mode == 'closed' else 'calls/s'} for {s.duration_s:g} s over {n.workers} "
                   f"process(es); Locust log: {self.path / 'locust.log'}", err=True)
        t0, tail = time.monotonic(), TurnsTail(self.path / "turns.jsonl")
        try:
            await self._watch(procs, tail, t0)
        except asyncio.CancelledError:  # a stop: Locust's master ends the test, its workers drain
            for p in procs:
                if p.returncode is None:
                    p.send_signal(signal.SIGINT)
        finally:
            await _stop(procs, s.drain_s)
            log.close()
        return procs[0].returncode

    async def _watch(self, procs, tail, t0: float) -> None:
        """Progress every 5 s until Locust's master exits."""
        while procs[0].returncode is None:
            try:
                await asyncio.wait_for(procs[0].wait(), timeout=5.0)
            except TimeoutError:
                done, p50 = tail.poll()
                click.echo(f"  {time.monotonic() - t0:5.0f} s  {done} turns"
                           + (f"  P50 {p50:.0f} ms" if p50 is not None else ""), err=True)

    def finish(self, code: int | None, meta: dict, truth: dict | None) -> dict:
        """summary.json and run.json from what the engines wrote; report.html."""
        from harness.load.results import load_summary
        i = self.inputs
        summary = load_summary(self.path, target=i.target, transport=i.transport, scenario=i.name,
                               turns_per_call=len(plan_turns(i.scenario, i.fixtures, 0, i.settings.seed)),
                               load=self.meta, truth=truth)
        label_providers(summary, (meta or {}).get("agent"))
        summary["impairment"] = i.impairment.to_json() if i.impairment else None
        apply_thresholds(summary, i.thresholds)
        out = RunFolder(self.path)
        out.write_json("summary.json", summary)
        if meta:
            status = "interrupted" if self.stop.signal is not None else (
                "completed" if code == 0 else f"locust exited {code}")
            out.write_json("run.json", {**meta, "status": status, "ended_at": now_iso(),
                                        "harness": summary["harness"],
                                        "calls_completed": summary["load"]["calls_finished"],
                                        "turns_written": summary["turns"]})
        out.close()
        if (problem := write_report(self.path)) is not None:
            click.echo(f"turnbench: warning: {problem}", err=True)
        return summary


async def _stop(procs, drain_s: float) -> None:
    """Workers get the drain time plus 30 s to finish; whatever still runs is ended."""
    for p in procs[1:]:
        try:
            await asyncio.wait_for(p.wait(), timeout=drain_s + 30)
        except TimeoutError:
            p.kill()
    for p in procs:
        if p.returncode is None:
            p.terminate()
            await p.wait()


def load_table(s: dict) -> str:
    """What load adds to the headline: arrivals, lost turns, each engine's health."""
    a, ld = s["arrivals"], s["load"]
    lines = [f"  calls: {ld['calls_finished']} finished, {ld['calls_abandoned']} abandoned at the drain deadline; "
             f"turns {s['turns']} of {ld['turns_expected']} expected ({ld['turns_lost']} lost)"]
    if a["mode"] == "open":
        lag = a.get("start_lag_ms") or {}
        lines.append(f"  arrivals ({a.get('process')}): offered {a.get('offered_calls_per_s')}/s → {a.get('offered')} "
                     f"offered, {a.get('started')} started, {a.get('dropped')} dropped; start lag P50 "
                     f"{lag.get('p50', '—')} ms, P99 {lag.get('p99', '—')} ms")
    else:
        lines.append(f"  closed loop: {ld['users']} callers, {a['achieved_calls_per_s']} calls/s achieved")
    for node, h in sorted((s.get("engines") or {}).items()):
        if not h:
            lines.append(f"  engine {node}: no health report")
            continue
        lines.append(f"  engine {node}: send lateness p50 {h['send_lateness_ms_p50']} / p99 {h['send_lateness_ms_p99']} ms,"
                     f" loop lag p99 {h['loop_lag_ms_p99']} ms, receive jitter p99 {h.get('recv_jitter_ms_p99')} ms,"
                     f" CPU mean {h['cpu_pct_mean']} % (p90 {h['cpu_pct_p90']}),"
                     f" {h['calls_done']} calls" + ("  OVERLOADED" if h.get("overloaded") else ""))
    err = (s.get("measurement_error_ms") or {}).get("latency_ms")
    if err:
        lines.append(f"  measurement error vs the oracle's truth: latency |error| median {err['median_abs_error_ms']} ms,"
                     f" p99 {err['p99_abs_error_ms']} ms, max {err['max_abs_error_ms']} ms (n={err['n']})")
    if s["harness"].get("overloaded"):
        lines.append("  NOT TRUSTWORTHY: " + "; ".join(s["harness"]["overloaded_why"]))
    return "\n".join(lines)


def _run_locust_worker(master_host: str, master_port: int) -> int:
    """A worker needs no scenario of its own: the master sends the engine config."""
    import subprocess
    return subprocess.call([sys.executable, "-m", "locust", "-f", locustfile(), "--worker", "--master-host",
                            master_host, "--master-port", str(master_port)])
