"""`turnbench report`: one self-contained HTML report (or a table) from one or more run folders."""

from __future__ import annotations

import time
from pathlib import Path

import click

from harness.cli.common import EXIT_OK, fail
from harness.report.data import RunData, load_run
from harness.report.html import DEFAULT_MAX_TIMELINES, write_html_report


def load_runs(paths: tuple[Path, ...], labels: tuple[str, ...]) -> list[RunData]:
    if labels and len(labels) != len(paths):
        fail(f"--label given {len(labels)} times for {len(paths)} runs: give one per run or none")
    runs = []
    for i, p in enumerate(paths):
        runs.append(load_run(p, labels[i] if labels else None))
    seen: dict[str, int] = {}
    for r in runs:  # two folders with the same name (e.g. a/run and b/run) stay distinguishable
        seen[r.label] = seen.get(r.label, 0) + 1
        if seen[r.label] > 1:
            r.label = f"{r.label} ({seen[r.label]})"
    return runs


@click.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write. Default: RUN_DIR/report.html for one run, ./comparison.html for several; "
                   "stdout for --format json|csv|markdown.")
@click.option("--format", "fmt", type=click.Choice(["html", "json", "csv", "markdown"]), default="html",
              show_default=True, help="html = the full report; the others print a table.")
@click.option("--table", type=click.Choice(["summary", "turns"]), default="summary", show_default=True,
              help="With --format json|csv|markdown: the summary (one column per run) or the per-turn table.")
@click.option("--label", "labels", multiple=True, help="Name of each run in the report (repeat, in order).")
@click.option("--max-timelines", type=click.IntRange(min=0), default=DEFAULT_MAX_TIMELINES, show_default=True,
              help="Most per-call timelines drawn (slowest calls, then false interruptions and failed barge-ins).")
def report(run_dirs: tuple[Path, ...], output: Path | None, fmt: str, table: str, labels: tuple[str, ...],
           max_timelines: int) -> None:
    """Report on RUN_DIR (a run folder or its summary.json); several RUN_DIRs → a comparison.

    The HTML is one self-contained file (figures inline, no network): the headline against
    thresholds and the 300 ms budget, latency CDF and histogram, the stage waterfall, per-call
    timelines, latency over time and against concurrency, harness health and run metadata. With
    several runs the first is the reference: figures are overlaid and a delta table gives each
    metric's difference with its bootstrap interval.
    """
    runs = load_runs(run_dirs, labels)
    if fmt != "html":
        from harness.report.tables import render
        text = render(runs, fmt, table)
        if output is None:
            click.echo(text, nl=False)
        else:
            output.write_text(text)
            click.echo(f"wrote {output}", err=True)
        raise SystemExit(EXIT_OK)
    if output is None:
        output = (runs[0].path / "report.html") if len(runs) == 1 else Path("comparison.html")
    t0 = time.perf_counter()
    write_html_report(runs, output, max_timelines)
    turns = sum(len(r.turns) for r in runs)
    click.echo(f"wrote {output} ({turns} turns, {output.stat().st_size / 1e6:.1f} MB, "
               f"{time.perf_counter() - t0:.1f} s)", err=True)
