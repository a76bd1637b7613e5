"""`turnbench run` and `turnbench validate`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click
from pydantic import ValidationError

from harness.agent.launch import AgentStartFailed
from harness.agent.oracle_config import OracleConfig, parse_overrides
from harness.agent.targets import BUILTIN_TARGETS, check_target, open_target
from harness.audio.fixtures import DEFAULT_FIXTURES_DIR, FixtureError, FixtureLibrary
from harness.caller.call import CallSettings
from harness.caller.runner import RunSpec
from harness.caller.session import benchmark
from harness.cli.common import (EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_TARGET, EXIT_USAGE, check_thresholds, fail,
                                impairment_from, impairment_options, summary_table)
from harness.metrics.turns import AnalysisSettings
from harness.results.folder import RunFolder, run_metadata
from harness.scenario import ScenarioError, load_scenario
from harness.transports import TargetUnreachable

DEFAULT_REPORTS = Path("reports")


def load_inputs(scenario_path: str, fixtures_dir: Path):
    try:
        lib = FixtureLibrary.load(fixtures_dir)
        return load_scenario(scenario_path, lib), lib
    except (ScenarioError, FixtureError) as e:
        fail(str(e), EXIT_USAGE)


def oracle_config(pairs: tuple[str, ...]) -> OracleConfig:
    try:
        return OracleConfig(**parse_overrides(list(pairs)))
    except ValueError as e:
        if isinstance(e, ValidationError):
            err = e.errors()[0]
            fail(f"--oracle {'.'.join(map(str, err['loc']))}: {err['msg']}")
        fail(f"--oracle {e}")


def _pairs(values: tuple[str, ...], flag: str) -> dict[str, str]:
    out = {}
    for v in values:
        key, sep, val = v.partition("=")
        if not sep or not key:
            fail(f"{flag} {v!r}: expected KEY=VALUE")
        out[key] = val
    return out


def transport_settings(transport: str, twilio_params: tuple[str, ...] = (), signalling: str = "json",
                       fields: tuple[str, ...] = (), datachannel: str = "turnbench", jitter_buffer_ms: float = 0.0,
                       ice_servers: tuple[str, ...] = ()) -> dict:
    """The transport's constructor options from the command line (recorded in run.json)."""
    if transport == "twilio":
        return {"custom_parameters": _pairs(twilio_params, "--twilio-param")}
    if transport == "webrtc":
        return {"signalling": signalling, "extra_fields": _pairs(fields, "--webrtc-field"),
                "datachannel": None if datachannel == "none" else datachannel,
                "jitter_buffer_ms": jitter_buffer_ms, "ice_servers": list(ice_servers)}
    return {}


@click.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--target", "-t", default=None,
              help=f"ws://HOST:PORT/PATH of the agent, or a built-in agent ({', '.join(BUILTIN_TARGETS)}). "
                   "Default: the scenario's defaults.target.")
@click.option("--transport", type=click.Choice(["ws-pcm", "twilio", "webrtc"]), default=None,
              help="Wire protocol (default: the scenario's defaults.transport): ws-pcm, twilio (Media Streams: "
                   "turnbench plays the phone network), webrtc (aiortc peer, Opus; --target is the offer URL).")
@click.option("--twilio-param", "twilio_params", multiple=True, metavar="KEY=VALUE",
              help="twilio: a customParameters entry of the `start` message (repeatable).")
@click.option("--webrtc-signalling", type=click.Choice(["json", "whip"]), default="json", show_default=True,
              help="webrtc: POST {sdp, type} JSON to the URL, or WHIP (application/sdp, 201 + Location, DELETE).")
@click.option("--webrtc-field", "webrtc_fields", multiple=True, metavar="KEY=VALUE",
              help="webrtc json: an extra field of the offer the server expects (repeatable).")
@click.option("--webrtc-datachannel", default="turnbench", show_default=True, metavar="LABEL|none",
              help="webrtc: open a data channel with this label (events, hints); `none` for no channel.")
@click.option("--webrtc-jitter-buffer-ms", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="webrtc: a fixed receive buffer before playout (aiortc's own 80 ms buffer is replaced).")
@click.option("--ice-server", "ice_servers", multiple=True, metavar="URL",
              help="webrtc: a STUN/TURN server (repeatable). None by default: no traffic leaves for one.")
@impairment_options
@click.option("--calls", "-n", type=click.IntRange(min=1), default=None, help="Number of calls (default: scenario).")
@click.option("--concurrency", "-c", type=click.IntRange(min=1), default=None,
              help="Calls in flight at once (default: scenario).")
@click.option("--seed", type=int, default=None, help="Seed for fixture picks and the oracle (default: scenario).")
@click.option("--response-timeout-s", type=click.FloatRange(min=0.1), default=None,
              help="A turn with no audible reply by then is `no_response` (default: scenario, 8 s).")
@click.option("--oracle", "oracle_opts", multiple=True, metavar="KEY=VALUE",
              help="Oracle behaviour when --target oracle, e.g. delay_ms=lognormal:300:800, reply_ms=1500, "
                   "noise_dbfs=-50 (repeatable; see `turnbench agent serve --help`).")
@click.option("--threshold", "thresholds", multiple=True, metavar="EXPR",
              help="Fail (exit 1) unless the summary meets EXPR, e.g. 'latency_ms.p99<800' or "
                   "'false_interruption_rate<0.05' (repeatable; adds to the scenario's defaults.thresholds).")
@click.option("--agent-args", default="", metavar="'OPTIONS'",
              help="Options for the reference agent that `--target reference` (the default) starts, as one "
                   "string, e.g. \"--turn semantic\" or \"--pipeline batch --llm sim\" (see `turnbench agent "
                   "serve --help`). Its log goes to agent.log in the run folder.")
@click.option("--hints", is_flag=True,
              help="Send turnbench.hint events (which samples are speech) to a ws:// target: needed to drive "
                   "an oracle started with `turnbench agent serve --oracle`; on by itself for --target oracle.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_REPORTS,
              show_default=True, help="Directory the run folder is created in.")
@click.option("--fixtures", "fixtures_dir", type=click.Path(file_okay=False, path_type=Path),
              default=DEFAULT_FIXTURES_DIR, help="Fixture directory (with manifest.json).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar on stderr.")
def run(scenario: str, target: str | None, transport: str | None, twilio_params: tuple[str, ...],
        webrtc_signalling: str, webrtc_fields: tuple[str, ...], webrtc_datachannel: str,
        webrtc_jitter_buffer_ms: float, ice_servers: tuple[str, ...], impair: str | None, delay_ms: float | None,
        jitter_ms: float | None, loss: float | None, loss_burst: float | None, reorder: bool | None,
        calls: int | None,
        concurrency: int | None,
        seed: int | None, response_timeout_s: float | None, oracle_opts: tuple[str, ...],
        thresholds: tuple[str, ...], agent_args: str, hints: bool, out_dir: Path,
        fixtures_dir: Path, progress: bool) -> None:
    """Benchmark an agent with a scenario: real-time calls, per-turn metrics, a run folder.

    Without --target (and no defaults.target in the scenario) the reference agent is started in
    the background, benchmarked and stopped.
    Writes reports/<time>-<scenario>/ with run.json, turns.jsonl (appended as calls complete)
    and summary.json, then prints the headline numbers. Ctrl-C stops cleanly and keeps every
    turn already measured.
    """
    loaded, lib = load_inputs(scenario, fixtures_dir)
    sc = loaded.scenario
    d = sc.defaults
    target = target or d.target
    transport = transport or d.transport
    try:
        check_target(target, transport)
    except ValueError as e:
        fail(str(e))
    impairment = impairment_from(impair, delay_ms, jitter_ms, loss, loss_burst, reorder)
    transport_options = transport_settings(transport, twilio_params, webrtc_signalling, webrtc_fields,
                                           webrtc_datachannel, webrtc_jitter_buffer_ms, ice_servers)
    check_thresholds(thresholds)
    all_thresholds = [*d.thresholds, *thresholds]
    ocfg = oracle_config(oracle_opts)
    if seed is not None:
        ocfg = ocfg.model_copy(update={"seed": seed})
    spec_calls, spec_conc = calls or d.calls, concurrency or d.concurrency
    settings = CallSettings(response_timeout_s=response_timeout_s or d.response_timeout_s,
                            reply_silence_ms=d.reply_silence_ms, hints=hints or target == "oracle",
                            seed=d.seed if seed is None else seed)
    analysis = AnalysisSettings(response_timeout_s=settings.response_timeout_s,
                                barge_in_threshold_ms=d.barge_in_threshold_ms)
    folder = RunFolder.create(out_dir, sc.name)
    meta = run_metadata(
        scenario={"name": sc.name, "path": str(loaded.path), "sha256": loaded.sha256, "steps": len(sc.steps)},
        fixtures={"dir": str(lib.directory), "digest": lib.digest(), "count": len(lib)},
        target=target, transport=transport, transport_options=transport_options, calls=spec_calls, concurrency=spec_conc,
        seed=settings.seed, response_timeout_s=settings.response_timeout_s,
        barge_in_threshold_ms=d.barge_in_threshold_ms,
        oracle=ocfg.model_dump() if target == "oracle" else None,
        impairment=impairment.to_json() if impairment is not None else None)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=spec_calls, unit="call", desc=sc.name, leave=False, dynamic_ncols=True)

    def on_progress(done: int, p50: float | None) -> None:
        if bar is not None:
            bar.n = done
            bar.set_postfix_str(f"P50 {p50:.0f} ms" if p50 is not None else "P50 —")
            bar.refresh()

    if agent_args and target != "reference":
        fail(f"--agent-args applies to --target reference only (the target is {target})")
    if target == "reference" and progress:
        click.echo("starting the reference agent (loading models) …", err=True)

    if target == "reference" and "--preload" not in agent_args:
        agent_args = f"{agent_args} --preload {spec_conc}".strip()

    async def go():
        async with open_target(target, ocfg, d.barge_in_threshold_ms, agent_args,
                               folder.path / "agent.log", transport) as resolved:
            if resolved.info:
                meta["agent"] = {**resolved.info, "url": resolved.url}
                if target == "reference":
                    meta["agent"]["args"] = agent_args
            spec = RunSpec(sc, lib, resolved.url, transport, spec_calls, spec_conc, settings,
                           analysis, call_id_in_url=settings.hints, transport_options=transport_options,
                           impairment=impairment)
            return await benchmark(spec, folder, meta, sc.name, resolved.label, on_progress, all_thresholds)

    try:
        summary, outcome = asyncio.run(go())
    except AgentStartFailed as e:
        folder.close()
        fail(str(e), EXIT_USAGE if e.usage else EXIT_TARGET)
    except TargetUnreachable as e:
        folder.close()
        fail(str(e), EXIT_TARGET)
    except KeyboardInterrupt:
        fail(f"interrupted before any call completed; partial results in {folder.path}", EXIT_INTERRUPTED)
    finally:
        if bar is not None:
            bar.close()
    try:
        from harness.cli.report import write_html_report
        from harness.report.data import load_run
        write_html_report([load_run(folder.path)], folder.path / "report.html")
    except Exception as e:  # the measurements are already on disk; a report problem must not hide them
        click.echo(f"turnbench: warning: report.html not written ({type(e).__name__}: {e}); "
                   f"retry with `turnbench report {folder.path}`", err=True)
    click.echo(summary_table(summary))
    for check in summary["thresholds"]:
        got = f"{check['actual']:g}" if check["actual"] is not None else "no value"
        click.echo(f"  [{'pass' if check['pass'] else 'FAIL'}] {check['expr']} (got {got})")
    click.echo(f"run folder: {folder.path}")
    if outcome.interrupted:
        raise SystemExit(EXIT_INTERRUPTED)
    if not summary.get("target_spoke"):
        fail(f"{target}: the target never spoke (no audible audio in any turn); is it a voice agent?", EXIT_TARGET)
    raise SystemExit(EXIT_FAILED if any(not c["pass"] for c in summary["thresholds"]) else EXIT_OK)


@click.command()
@click.argument("scenarios", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--fixtures", "fixtures_dir", type=click.Path(file_okay=False, path_type=Path),
              default=DEFAULT_FIXTURES_DIR, help="Fixture directory (with manifest.json).")
def validate(scenarios: tuple[str, ...], fixtures_dir: Path) -> None:
    """Check scenario files (YAML, fields, fixture ids) without calling anything."""
    bad = 0
    for path in scenarios:
        try:
            lib = FixtureLibrary.load(fixtures_dir)
            loaded = load_scenario(path, lib)
            click.echo(f"ok  {path}: {loaded.scenario.name}, {len(loaded.scenario.steps)} steps")
        except (ScenarioError, FixtureError) as e:
            click.echo(f"turnbench: error: {e}", err=True)
            bad += 1
    raise SystemExit(EXIT_USAGE if bad else EXIT_OK)
