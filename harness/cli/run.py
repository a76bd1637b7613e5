"""`turnbench run` and `turnbench validate`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from harness.audio.fixtures import FixtureLibrary
from harness.cli.common import EXIT_OK, EXIT_USAGE, Finite, fail, summary_table
from harness.cli.options import fixtures_option, output_options, target_options
from harness.errors import InputError, TurnbenchError
from harness.resources import resolve_scenario
from harness.results.folder import RunFolder, now_iso
from harness.scenario import load_scenario
from harness.service.finish import exit_code, threshold_lines, write_report
from harness.service.inputs import RunInputs
from harness.service.session import benchmark
from harness.service.signals import Stop, stop_on_signals


@click.command()
@click.argument("scenario")
@target_options
@click.option("--calls", "-n", type=click.IntRange(min=1), default=None, help="Number of calls (default: scenario).")
@click.option("--concurrency", "-c", type=click.IntRange(min=1), default=None,
              help="Calls in flight at once (default: scenario).")
@click.option("--seed", type=int, default=None, help="Seed for fixture picks and the oracle (default: scenario).")
@click.option("--response-timeout-s", type=Finite(min=0.1, max=600), default=None,
              help="A turn with no audible reply by then is `no_response` (default: scenario, 8 s).")
@click.option("--threshold", "thresholds", multiple=True, metavar="EXPR",
              help="Fail (exit 1) unless the summary meets EXPR, e.g. 'latency_ms.p99<800' or "
                   "'false_interruption_rate<0.05' (repeatable; adds to the scenario's defaults.thresholds).")
@click.option("--hints", is_flag=True,
              help="Send turnbench.hint events (which samples are speech) to a ws:// target: needed to drive "
                   "an oracle started with `turnbench agent serve --oracle`; on by itself for --target oracle.")
@output_options()
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar on stderr.")
def run(scenario: str, target: str | None, transport: str | None, transport_values: dict, impairment,
        agent_args: str, oracle_opts: tuple[str, ...], agent_token: str | None, calls: int | None,
        concurrency: int | None, seed: int | None, response_timeout_s: float | None, thresholds: tuple[str, ...],
        hints: bool, out_dir: Path,
        fixtures_dir: Path | None, progress: bool) -> None:
    """Benchmark an agent with a scenario: real-time calls, per-turn metrics, a run folder.

    SCENARIO is a scenario file or the name of a built-in one (`turnbench scenarios list`).
    Without --target (and no defaults.target in the scenario) the reference agent is started in
    the background, benchmarked and stopped.
    Writes reports/<time>-<scenario>/ with run.json, turns.jsonl (appended as calls complete)
    and summary.json, then prints the headline numbers. Ctrl-C stops cleanly and keeps every
    turn already measured.
    """
    inputs = RunInputs.resolve(
        scenario, fixtures_dir=fixtures_dir, target=target, transport=transport, transport_values=transport_values,
        impairment=impairment, oracle_opts=oracle_opts, agent_args=agent_args, thresholds=thresholds, seed=seed,
        response_timeout_s=response_timeout_s, hints=hints, calls=calls, concurrency=concurrency,
        agent_token=agent_token)
    inputs = inputs.with_preload(inputs.concurrency)
    folder = RunFolder.create(out_dir, inputs.name)
    bar = _progress_bar(inputs, progress)
    meta = inputs.metadata(calls=inputs.calls, concurrency=inputs.concurrency)
    stop = Stop()
    try:
        summary, outcome = asyncio.run(_benchmark(inputs, folder, bar, meta, stop))
    except (asyncio.CancelledError, KeyboardInterrupt):  # stopped before the calls began
        folder.write_json("run.json", {**meta, "status": "interrupted", "ended_at": now_iso()})
        fail(f"interrupted before any call was measured; the run folder is {folder.path}", stop.exit_code)
    except TurnbenchError as e:  # the target could not be started or reached: say so in the folder too
        folder.write_json("run.json", {**meta, "status": "failed", "error": str(e), "ended_at": now_iso()})
        raise
    finally:
        folder.close()
        if bar is not None:
            bar.close()
    code, message = exit_code(summary, outcome.interrupted)
    if message:  # the cause first: a run that went wrong says why before any table
        click.echo(f"turnbench: error: {message}", err=True)
    if (problem := write_report(folder.path)) is not None:
        click.echo(f"turnbench: warning: {problem}", err=True)
    click.echo(summary_table(summary))
    for line in threshold_lines(summary):
        click.echo(line)
    click.echo(f"run folder: {folder.path}")
    raise SystemExit(stop.exit_code if outcome.interrupted else code)


def _progress_bar(inputs: RunInputs, progress: bool):
    if not progress:
        return None
    if inputs.target == "reference":
        click.echo("starting the reference agent (loading models) …", err=True)
    from tqdm import tqdm
    return tqdm(total=inputs.calls, unit="call", desc=inputs.name, leave=False, dynamic_ncols=True)


async def _benchmark(inputs: RunInputs, folder: RunFolder, bar, meta: dict, stop: Stop):
    """Start the target, run every call, stop the target; the summary and the runner's outcome.
    SIGINT or SIGTERM stops the calls; what was measured is kept and written."""
    def on_progress(done: int, p50: float | None) -> None:
        if bar is not None:
            bar.n = done
            bar.set_postfix_str(f"P50 {p50:.0f} ms" if p50 is not None else "P50 —")
            bar.refresh()

    with stop_on_signals(stop):
        return await _calls(inputs, folder, meta, on_progress)


async def _calls(inputs: RunInputs, folder: RunFolder, meta: dict, on_progress):
    async with inputs.open_target(folder.path / "agent.log") as resolved:
        meta["agent"] = inputs.agent_meta(resolved)
        return await benchmark(inputs.spec(resolved.url, run_id=folder.path.name), folder, meta, inputs.name,
                               resolved.label, on_progress, inputs.thresholds)


@click.command()
@click.argument("scenarios", nargs=-1, required=True)
@fixtures_option
def validate(scenarios: tuple[str, ...], fixtures_dir: Path | None) -> None:
    """Check scenario files (YAML, fields, fixture ids) without calling anything."""
    bad = 0
    for path in scenarios:
        try:
            lib = FixtureLibrary.load(fixtures_dir)
            loaded = load_scenario(resolve_scenario(path), lib)
            click.echo(f"ok  {path}: {loaded.scenario.name}, {len(loaded.scenario.steps)} steps")
        except InputError as e:
            click.echo(f"turnbench: error: {e}", err=True)
            bad += 1
    raise SystemExit(EXIT_USAGE if bad else EXIT_OK)
