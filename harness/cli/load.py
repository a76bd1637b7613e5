"""`turnbench load`: many real-time callers through Locust, on one machine or many."""

from __future__ import annotations

import asyncio
import importlib.util
import re
import sys
import time
from pathlib import Path

import click

from harness.agent.launch import AgentStartFailed
from harness.agent.targets import check_target, open_target
from harness.audio.fixtures import DEFAULT_FIXTURES_DIR
from harness.caller.call import CallSettings, plan_turns
from harness.cli.common import (EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_TARGET, EXIT_USAGE, check_thresholds,
                                agent_options, fail, impairment_from, summary_table)
from harness.cli.run import DEFAULT_REPORTS, load_inputs, oracle_config, transport_settings
from harness.transports import TargetUnreachable


def parse_duration(text: str) -> float:
    """'90', '90s', '5m', '1h30m' → seconds."""
    t = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", t):
        return float(t)
    parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", t)
    if not parts or "".join(a + b for a, b in parts) != t:
        raise click.BadParameter(f"{text!r}: expected seconds or a duration like 90s, 5m, 1h30m")
    return sum(float(a) * {"h": 3600, "m": 60, "s": 1}[b] for a, b in parts)


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def locustfile() -> str:
    return importlib.util.find_spec("harness.load.locustfile").origin


def _require_locust() -> None:
    if importlib.util.find_spec("locust") is None:
        fail("turnbench load needs Locust: pip install 'turnbench[load]'")


@click.command()
@click.argument("scenario", type=click.Path(dir_okay=False), required=False)
@click.option("--users", "-u", type=click.IntRange(min=1), default=10, show_default=True,
              help="Closed loop: simultaneous callers (each calls again after --think-s).")
@click.option("--spawn-rate", "-r", type=click.FloatRange(min=0.01), default=None,
              help="Closed loop: callers started per second (default: all within 5 s).")
@click.option("--duration", "-d", "duration", default="60s", show_default=True, metavar="T",
              help="How long calls are placed (90, 90s, 5m); calls in flight then finish (see --drain-s).")
@click.option("--think-s", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Closed loop: pause between one caller's calls.")
@click.option("--arrival-rate", type=click.FloatRange(min=0.001), default=None, metavar="CALLS_PER_S",
              help="Open loop: place calls at this rate whatever the agent does (instead of --users).")
@click.option("--arrivals", type=click.Choice(["poisson", "fixed"]), default="poisson", show_default=True,
              help="Open loop: exponential gaps (Poisson) or fixed spacing.")
@click.option("--max-in-flight", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Open loop: the harness's bound on calls in flight per process; arrivals beyond it are "
                   "counted as dropped, never delayed.")
@click.option("--processes", "-p", type=click.IntRange(min=1), default=1, show_default=True,
              help="Locust worker processes on this machine (a master plus N workers when N > 1), each with "
                   "its own caller engine.")
@click.option("--master", "as_master", is_flag=True,
              help="Run only Locust's master here and wait for --expect-workers workers (other machines run "
                   "`turnbench load SCENARIO --worker --master-host THIS_HOST`).")
@click.option("--expect-workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="With --master: workers to wait for before starting.")
@click.option("--master-bind-host", default="127.0.0.1", show_default=True,
              help="With --master: where the master listens (0.0.0.0 for other machines).")
@click.option("--master-port", type=click.IntRange(1, 65535), default=None,
              help="The master's port (default 5557 for --master and --worker; a free one for --processes).")
@click.option("--worker", "as_worker", is_flag=True, help="Run a Locust worker (and its engine) for a master.")
@click.option("--master-host", default="127.0.0.1", show_default=True, help="With --worker: the master's host.")
@click.option("--web", is_flag=True, help="Open Locust's web UI (turnbench's turns are its requests) instead of "
                                          "running headless; stop the test there, then Ctrl-C.")
@click.option("--web-port", type=click.IntRange(1, 65535), default=8089, show_default=True,
              help="With --web: Locust's web UI port on 127.0.0.1.")
@click.option("--drain-s", type=click.FloatRange(min=0), default=60.0, show_default=True,
              help="At the end: wait this long for calls in flight; the closed turns of the rest are kept.")
@agent_options
@click.option("--threshold", "thresholds", multiple=True, metavar="EXPR",
              help="Fail (exit 1) unless the summary meets EXPR (as `run`; adds to the scenario's).")
@click.option("--seed", type=int, default=None, help="Seed for fixture picks and arrivals (default: scenario).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_REPORTS,
              show_default=True, help="Directory the run folder is created in.")
@click.option("--fixtures", "fixtures_dir", type=click.Path(file_okay=False, path_type=Path),
              default=DEFAULT_FIXTURES_DIR, help="Fixture directory (with manifest.json).")
def load(scenario: str | None, users: int, spawn_rate: float | None, duration: str, think_s: float,
         arrival_rate: float | None, arrivals: str, max_in_flight: int, processes: int, as_master: bool,
         expect_workers: int, master_bind_host: str, master_port: int | None, as_worker: bool, master_host: str,
         web: bool, web_port: int, drain_s: float, target: str | None, transport: str | None, impair: str | None,
         delay_ms: float | None, jitter_ms: float | None, loss: float | None, loss_burst: float | None,
         reorder: bool | None, agent_args: str, oracle_opts: tuple[str, ...], thresholds: tuple[str, ...],
         seed: int | None, out_dir: Path, fixtures_dir: Path) -> None:
    """Load-test an agent with many real-time callers, driven by Locust.

    Closed loop (--users N, each calling again after --think-s) or open loop (--arrival-rate:
    calls start on schedule however slow the agent is; each call's start lag against its
    intended start is recorded). Every Locust process runs turnbench's own caller engine in a
    separate process that gevent never patches, so Locust's patching cannot touch the timing.
    The run folder is `turnbench run`'s (turns.jsonl with exact numbers from every worker,
    summary.json, report.html), plus engines.json (each engine's health), calls.jsonl and
    Locust's own CSV and HTML.
    """
    _require_locust()
    if as_worker:
        raise SystemExit(_run_locust_worker(master_host, master_port or 5557))
    if scenario is None:
        fail("missing SCENARIO (only --worker runs without one)")
    if as_master and processes > 1:
        fail("--master runs the master only: start workers with --worker (drop --processes)")
    check_thresholds(thresholds)
    duration_s = parse_duration(duration)
    loaded, lib = load_inputs(scenario, fixtures_dir)
    sc, d = loaded.scenario, loaded.scenario.defaults
    target, transport = target or d.target, transport or d.transport
    try:
        check_target(target, transport)
    except ValueError as e:
        fail(str(e), EXIT_USAGE)
    if agent_args and target != "reference":
        fail(f"--agent-args applies to --target reference only (the target is {target})")
    impairment = impairment_from(impair, delay_ms, jitter_ms, loss, loss_burst, reorder)
    ocfg = oracle_config(oracle_opts)
    seed = d.seed if seed is None else seed
    settings = CallSettings(response_timeout_s=d.response_timeout_s, reply_silence_ms=d.reply_silence_ms,
                            hints=target == "oracle", seed=seed)
    workers = expect_workers if as_master else processes
    master_port = master_port or (5557 if as_master else free_port())
    mode = "open" if arrival_rate else "closed"
    loc_users = workers if mode == "open" else users
    rate = workers if mode == "open" else (spawn_rate or max(1.0, users / 5.0))
    turns_per_call = len(plan_turns(sc, lib, 0, seed))

    from harness.load.engine_config import EngineConfig
    from harness.load.results import TurnsTail, load_summary
    from harness.results.folder import RunFolder, run_metadata
    folder = RunFolder.create(out_dir, f"load-{sc.name}")
    folder.close()
    load_meta = {"mode": mode, "users": None if mode == "open" else users, "spawn_rate": None if mode == "open" else rate,
                 "think_s": None if mode == "open" else think_s, "arrival_rate_per_s": arrival_rate,
                 "arrival_process": arrivals if mode == "open" else None, "duration_s": duration_s,
                 "processes": workers, "distributed": as_master, "drain_s": drain_s}
    all_thresholds = list(d.thresholds) + list(thresholds)
    if target == "reference" and "--preload" not in agent_args:
        agent_args = f"{agent_args} --preload {min(users if mode == 'closed' else 4, 8)}".strip()

    async def go() -> tuple[int, dict]:
        async with open_target(target, ocfg, d.barge_in_threshold_ms, agent_args, folder.path / "agent.log",
                               transport) as resolved:
            cfg = EngineConfig(scenario_path=str(loaded.path), fixtures_dir=str(lib.directory), target_url=resolved.url,
                               transport=transport, transport_options=transport_settings(transport),
                               impairment=impairment.to_json() if impairment else None,
                               call_settings={"response_timeout_s": settings.response_timeout_s,
                                              "reply_silence_ms": settings.reply_silence_ms, "hints": settings.hints,
                                              "seed": settings.seed},
                               response_timeout_s=settings.response_timeout_s,
                               barge_in_threshold_ms=d.barge_in_threshold_ms, call_id_in_url=settings.hints,
                               scenario_sha256=loaded.sha256, fixtures_digest=lib.digest(), scenario_label=sc.name,
                               run_started_unix=time.time())
            meta = run_metadata(
                scenario={"name": sc.name, "path": str(loaded.path), "sha256": loaded.sha256, "steps": len(sc.steps)},
                fixtures={"dir": str(lib.directory), "digest": lib.digest(), "count": len(lib)},
                target=target, transport=transport, seed=seed, load=load_meta,
                impairment=cfg.impairment, oracle=ocfg.model_dump() if target == "oracle" else None,
                agent={**resolved.info, "url": resolved.url} if resolved.info else None)
            RunFolder(folder.path).write_json("run.json", {**meta, "status": "running"})
            common = ["--turnbench-config", cfg.to_json(), "--turnbench-think-s", str(think_s),
                      "--turnbench-arrivals", arrivals, "--turnbench-duration-s", str(duration_s),
                      "--turnbench-processes", str(workers), "--turnbench-max-in-flight", str(max_in_flight),
                      "--turnbench-drain-s", str(drain_s), "--turnbench-seed", str(seed),
                      "--turnbench-arrival-rate", str(arrival_rate or 0)]
            head = ["--web-host", "127.0.0.1", "--web-port", str(web_port)] if web else \
                ["--headless", "-u", str(loc_users), "-r", str(rate),
                 # open loop ends when the schedule does; -t is only a safety bound there
                 "-t", f"{int(round(duration_s)) + (120 if mode == 'open' else 0)}s"]
            args = [sys.executable, "-m", "locust", "-f", locustfile(), *head, *common,
                    "--turnbench-out", str(folder.path), "--csv", str(folder.path / "locust"),
                    "--html", str(folder.path / "locust.html"), "--exit-code-on-error", "0",
                    "--stop-timeout", "0", "--loglevel", "INFO"]
            if as_master or workers > 1:
                args += ["--master", "--expect-workers", str(workers), "--master-bind-host", master_bind_host,
                         "--master-bind-port", str(master_port)]
            args.append("OpenLoopCaller" if mode == "open" else "ClosedLoopCaller")
            log = (folder.path / "locust.log").open("ab")
            procs = [await asyncio.create_subprocess_exec(*args, stdout=log, stderr=log)]
            if workers > 1 and not as_master:
                for _ in range(workers):
                    procs.append(await asyncio.create_subprocess_exec(
                        sys.executable, "-m", "locust", "-f", locustfile(), "--worker", "--master-host", "127.0.0.1",
                        "--master-port", str(master_port), *common, stdout=log, stderr=log))
            click.echo(f"load: {mode} loop, {loc_users if mode == 'closed' else arrival_rate} "
                       f"{'callers' if mode == 'closed' else 'calls/s'} for {duration_s:g} s over {workers} "
                       f"process(es); Locust log: {folder.path / 'locust.log'}", err=True)
            t0 = time.monotonic()
            tail = TurnsTail(folder.path / "turns.jsonl")
            try:
                while procs[0].returncode is None:
                    try:
                        await asyncio.wait_for(procs[0].wait(), timeout=5.0)
                    except asyncio.TimeoutError:
                        n, p50 = tail.poll()
                        click.echo(f"  {time.monotonic() - t0:5.0f} s  {n} turns"
                                   + (f"  P50 {p50:.0f} ms" if p50 is not None else ""), err=True)
            finally:
                for p in procs[1:]:
                    try:
                        await asyncio.wait_for(p.wait(), timeout=drain_s + 30)
                    except asyncio.TimeoutError:
                        p.kill()
                for p in procs:
                    if p.returncode is None:
                        p.terminate()
                        await p.wait()
                log.close()
            truth = None
            if resolved.oracle is not None:  # the oracle's own account of every turn, to score the measurement
                from harness.agent.oracle import truth_to_json
                await asyncio.sleep(0.3)  # let it see the last hang-ups
                truth = {(t.call_id, t.turn): truth_to_json(t) for t in resolved.oracle.truth}
            return procs[0].returncode, meta, truth

    try:
        code, meta, truth = asyncio.run(go())
    except AgentStartFailed as e:
        fail(str(e), EXIT_USAGE if e.usage else EXIT_TARGET)
    except TargetUnreachable as e:
        fail(str(e), EXIT_TARGET)
    except KeyboardInterrupt:
        code, meta, truth = EXIT_INTERRUPTED, {}, None
    from harness.caller.session import label_providers
    from harness.gate import evaluate
    summary = load_summary(folder.path, target=target, transport=transport, scenario=sc.name,
                           turns_per_call=turns_per_call, load=load_meta, truth=truth)
    label_providers(summary, (meta or {}).get("agent"))
    summary["impairment"] = impairment.to_json() if impairment else None
    checks = evaluate(summary, all_thresholds)
    summary["thresholds"] = [{"expr": c.threshold.expr, "actual": c.actual, "pass": c.passed} for c in checks]
    out = RunFolder(folder.path)
    out.write_json("summary.json", summary)
    if meta:
        out.write_json("run.json", {**meta, "status": "completed" if code == 0 else f"locust exited {code}",
                                    "harness": summary["harness"], "calls_completed": summary["load"]["calls_finished"],
                                    "turns_written": summary["turns"]})
    out.close()
    try:
        from harness.cli.report import write_html_report
        from harness.report.data import load_run
        write_html_report([load_run(folder.path)], folder.path / "report.html")
    except Exception as e:  # the measurements are on disk; a report problem must not hide them
        click.echo(f"turnbench: warning: report.html not written ({type(e).__name__}: {e})", err=True)
    click.echo(summary_table(summary))
    click.echo(load_table(summary))
    click.echo(f"run folder: {folder.path} (Locust's own: locust.html, locust_stats.csv)")
    if code not in (0, None):
        fail(f"Locust exited with {code}; see {folder.path / 'locust.log'}", EXIT_INTERRUPTED if code == 130 else EXIT_FAILED)
    raise SystemExit(EXIT_FAILED if any(not c["pass"] for c in summary["thresholds"]) else EXIT_OK)


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
