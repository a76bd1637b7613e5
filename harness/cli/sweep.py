"""`turnbench sweep`: latency against concurrency, step by step, and the knee."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from harness.cli.common import EXIT_FAILED, EXIT_OK, Finite, fail
from harness.cli.options import output_options, target_options
from harness.errors import InputError
from harness.load.sweep import StepResult, doubling, parse_levels, sweep_document, sweep_table
from harness.report.sweep_page import sweep_html
from harness.results.folder import RunFolder
from harness.service.inputs import RunInputs
from harness.service.session import benchmark
from harness.service.signals import Stop, stop_on_signals


@click.command()
@click.argument("scenario")
@click.option("--concurrency", "levels", default=None, metavar="1,2,4,…",
              help="Concurrency levels, increasing (default with --until-p99: 1, 2, 4, … up to --max-concurrency).")
@click.option("--until-p99", type=Finite(min=1, max=600_000), default=None, metavar="MS",
              help="Stop after the first counted step whose P99 exceeds MS; also the knee's threshold "
                   "(default threshold 800 ms).")
@click.option("--max-concurrency", type=click.IntRange(min=1), default=64, show_default=True,
              help="Highest level tried by --until-p99 without --concurrency.")
@click.option("--calls-per-level", type=click.IntRange(min=1), default=2, show_default=True,
              help="Calls per step = concurrency × this (every call in flight at once, then again).")
@target_options
@click.option("--seed", type=int, default=None, help="Seed for fixture picks (default: scenario).")
@output_options("sweep folder")
def sweep(scenario: str, levels: str | None, until_p99: float | None, max_concurrency: int, calls_per_level: int,
          target: str | None, transport: str | None, transport_values: dict, impairment, agent_args: str,
          oracle_opts: tuple[str, ...], agent_token: str | None, seed: int | None, out_dir: Path,
          fixtures_dir: Path | None) -> None:
    """Run the scenario at rising concurrency, back to back, and report the knee: the highest
    concurrency whose P99 latency stays within the threshold.

    Each step is a full run folder (turns, summary, report) under reports/<time>-sweep-<name>/,
    with sweep.json (turnbench.sweep/1) and sweep.html beside them. A step in which the harness
    fell behind its own schedule is flagged and does not count toward capacity. Exits 1 when no
    step stayed within the threshold.
    """
    inputs = RunInputs.resolve(scenario, fixtures_dir=fixtures_dir, target=target, transport=transport,
                               transport_values=transport_values, impairment=impairment, oracle_opts=oracle_opts,
                               agent_args=agent_args, seed=seed, agent_token=agent_token)
    try:
        steps_c = parse_levels(levels) if levels else doubling(max_concurrency if until_p99 else 8)
    except ValueError as e:
        raise InputError(str(e)) from None
    inputs = inputs.with_preload(steps_c[-1] if until_p99 is None else min(steps_c[-1], 4))
    top = RunFolder.create(out_dir, f"sweep-{inputs.name}")
    top.close()
    sw = Sweep(inputs, top, steps_c, calls_per_level, until_p99)
    try:
        asyncio.run(sw.run())
    except (KeyboardInterrupt, asyncio.CancelledError):
        if sw.results:
            click.echo(sweep_table(sw.write()))
        fail(f"interrupted; finished steps are in {top.path}", sw.stop.exit_code)
    doc = sw.write()
    click.echo(sweep_table(doc))
    click.echo(f"sweep folder: {top.path} (sweep.json, sweep.html, one run folder per step)")
    raise SystemExit(EXIT_OK if doc["knee"]["concurrency"] is not None else EXIT_FAILED)


class Sweep:
    """The steps of one sweep, written to sweep.json/sweep.html after each (Ctrl-C keeps them)."""

    def __init__(self, inputs: RunInputs, top: RunFolder, levels: list[int], calls_per_level: int,
                 until_p99: float | None):
        self.inputs, self.top, self.levels = inputs, top, levels
        self.calls_per_level, self.until_p99 = calls_per_level, until_p99
        self.threshold = until_p99 or 800.0
        self.results: list[StepResult] = []
        self.stop = Stop()
        self.meta = {"levels": levels, "calls_per_level": calls_per_level, "until_p99_ms": until_p99,
                     "impairment": inputs.impairment.to_json() if inputs.impairment else None}

    def write(self) -> dict:
        doc = sweep_document(self.inputs.name, self.inputs.target, self.inputs.transport, self.results,
                             self.threshold, self.meta)
        self.top.write_json("sweep.json", doc)
        (self.top.path / "sweep.html").write_text(sweep_html(doc))
        return doc

    async def run(self) -> None:
        """Every step in turn; SIGINT or SIGTERM ends the step in flight (its measured turns kept)."""
        with stop_on_signals(self.stop):
            await self._steps()

    async def _steps(self) -> None:
        inputs = self.inputs
        async with inputs.open_target(self.top.path / "agent.log") as resolved:
            for c in self.levels:
                folder = RunFolder(self.top.path / f"c{c:04d}")
                calls = c * self.calls_per_level
                meta = inputs.metadata(calls=calls, concurrency=c, sweep=str(self.top.path),
                                       agent=inputs.agent_meta(resolved))
                spec = inputs.spec(resolved.url, calls, c, run_id=f"{self.top.path.name}-{folder.path.name}")
                click.echo(f"step: {c} concurrent calls, {calls} calls …", err=True)
                summary, outcome = await benchmark(spec, folder, meta, inputs.name, resolved.label)
                step = StepResult.from_summary(c, folder.path.name, summary)
                self.results.append(step)
                self.write()  # as the sweep goes: a Ctrl-C keeps every finished step
                if outcome.interrupted:
                    raise KeyboardInterrupt
                if self.until_p99 is not None and step.counted and step.latency_p99_ms is not None \
                        and step.latency_p99_ms > self.until_p99:
                    break
