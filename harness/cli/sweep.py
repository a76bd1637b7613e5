"""`turnbench sweep`: latency against concurrency, step by step, and the knee."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from harness.agent.launch import AgentStartFailed
from harness.agent.targets import check_target, open_target
from harness.audio.fixtures import DEFAULT_FIXTURES_DIR
from harness.caller.call import CallSettings
from harness.caller.runner import RunSpec
from harness.caller.session import benchmark
from harness.cli.common import (EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_TARGET, EXIT_USAGE, fail,
                                agent_options, impairment_from)
from harness.cli.run import DEFAULT_REPORTS, load_inputs, oracle_config, transport_settings
from harness.load.sweep import StepResult, doubling, parse_levels, sweep_document, sweep_html, sweep_table
from harness.metrics.turns import AnalysisSettings
from harness.results.folder import RunFolder, run_metadata
from harness.transports import TargetUnreachable


@click.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--concurrency", "levels", default=None, metavar="1,2,4,…",
              help="Concurrency levels, increasing (default with --until-p99: 1, 2, 4, … up to --max-concurrency).")
@click.option("--until-p99", type=click.FloatRange(min=1), default=None, metavar="MS",
              help="Stop after the first counted step whose P99 exceeds MS; also the knee's threshold "
                   "(default threshold 800 ms).")
@click.option("--max-concurrency", type=click.IntRange(min=1), default=64, show_default=True,
              help="Highest level tried by --until-p99 without --concurrency.")
@click.option("--calls-per-level", type=click.IntRange(min=1), default=2, show_default=True,
              help="Calls per step = concurrency × this (every call in flight at once, then again).")
@agent_options
@click.option("--seed", type=int, default=None, help="Seed for fixture picks (default: scenario).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_REPORTS,
              show_default=True, help="Directory the sweep folder is created in.")
@click.option("--fixtures", "fixtures_dir", type=click.Path(file_okay=False, path_type=Path),
              default=DEFAULT_FIXTURES_DIR, help="Fixture directory (with manifest.json).")
def sweep(scenario: str, levels: str | None, until_p99: float | None, max_concurrency: int, calls_per_level: int,
          target: str | None, transport: str | None, impair: str | None, delay_ms: float | None,
          jitter_ms: float | None, loss: float | None, loss_burst: float | None, reorder: bool | None,
          agent_args: str, oracle_opts: tuple[str, ...], seed: int | None, out_dir: Path, fixtures_dir: Path) -> None:
    """Run the scenario at rising concurrency, back to back, and report the knee: the highest
    concurrency whose P99 latency stays within the threshold.

    Each step is a full run folder (turns, summary, report) under reports/<time>-sweep-<name>/,
    with sweep.json (turnbench.sweep/1) and sweep.html beside them. A step in which the harness
    fell behind its own schedule is flagged and does not count toward capacity. Exits 1 when no
    step stayed within the threshold.
    """
    loaded, lib = load_inputs(scenario, fixtures_dir)
    sc, d = loaded.scenario, loaded.scenario.defaults
    target, transport = target or d.target, transport or d.transport
    try:
        check_target(target, transport)
        steps_c = parse_levels(levels) if levels else doubling(max_concurrency if until_p99 else 8)
    except ValueError as e:
        fail(str(e), EXIT_USAGE)
    if agent_args and target != "reference":
        fail(f"--agent-args applies to --target reference only (the target is {target})")
    threshold = until_p99 or 800.0
    impairment = impairment_from(impair, delay_ms, jitter_ms, loss, loss_burst, reorder)
    ocfg = oracle_config(oracle_opts)
    settings = CallSettings(response_timeout_s=d.response_timeout_s, reply_silence_ms=d.reply_silence_ms,
                            hints=target == "oracle", seed=d.seed if seed is None else seed)
    analysis = AnalysisSettings(response_timeout_s=settings.response_timeout_s,
                                barge_in_threshold_ms=d.barge_in_threshold_ms)
    options = transport_settings(transport)
    top = RunFolder.create(out_dir, f"sweep-{sc.name}")
    top.close()
    if target == "reference" and "--preload" not in agent_args:
        agent_args = f"{agent_args} --preload {steps_c[-1] if until_p99 is None else min(steps_c[-1], 4)}".strip()
    results: list[StepResult] = []
    meta = {"levels": steps_c, "calls_per_level": calls_per_level, "until_p99_ms": until_p99,
            "impairment": impairment.to_json() if impairment else None}

    def write() -> dict:
        doc = sweep_document(sc.name, target, transport, results, threshold, meta)
        top.write_json("sweep.json", doc)
        (top.path / "sweep.html").write_text(sweep_html(doc))
        return doc

    async def go() -> None:
        async with open_target(target, ocfg, d.barge_in_threshold_ms, agent_args, top.path / "agent.log",
                               transport) as resolved:
            for c in steps_c:
                folder = RunFolder(top.path / f"c{c:04d}")
                calls = c * calls_per_level
                run_meta = run_metadata(
                    scenario={"name": sc.name, "path": str(loaded.path), "sha256": loaded.sha256},
                    fixtures={"dir": str(lib.directory), "digest": lib.digest(), "count": len(lib)},
                    target=target, transport=transport, calls=calls, concurrency=c, seed=settings.seed,
                    sweep=str(top.path), impairment=meta["impairment"], agent={**resolved.info, "url": resolved.url})
                spec = RunSpec(sc, lib, resolved.url, transport, calls, c, settings, analysis,
                               call_id_in_url=settings.hints, transport_options=options, impairment=impairment)
                click.echo(f"step: {c} concurrent calls, {calls} calls …", err=True)
                summary, outcome = await benchmark(spec, folder, run_meta, sc.name, resolved.label)
                step = StepResult.from_summary(c, folder.path.name, summary)
                results.append(step)
                write()  # as the sweep goes: a Ctrl-C keeps every finished step
                if outcome.interrupted:
                    raise KeyboardInterrupt
                if until_p99 is not None and step.counted and step.latency_p99_ms is not None \
                        and step.latency_p99_ms > until_p99:
                    break

    try:
        asyncio.run(go())
    except AgentStartFailed as e:
        fail(str(e), EXIT_USAGE if e.usage else EXIT_TARGET)
    except TargetUnreachable as e:
        fail(str(e), EXIT_TARGET)
    except KeyboardInterrupt:
        if results:
            click.echo(sweep_table(write()))
        fail(f"interrupted; finished steps are in {top.path}", EXIT_INTERRUPTED)
    doc = write()
    click.echo(sweep_table(doc))
    click.echo(f"sweep folder: {top.path} (sweep.json, sweep.html, one run folder per step)")
    raise SystemExit(EXIT_OK if doc["knee"]["concurrency"] is not None else EXIT_FAILED)
