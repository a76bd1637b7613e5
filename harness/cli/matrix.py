"""`turnbench matrix`: reference-agent configurations side by side on identical audio."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from harness.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, fail
from harness.cli.options import option_group, output_options, transport_options
from harness.errors import InputError

STAGE_HELP = {"stt": "pocketsphinx,whisper", "llm": "llama,openai", "tts": "piper,espeak", "vad": "silero",
              "turn": "vad,semantic"}


GRID_STAGES = ("stt", "llm", "tts", "vad", "turn")
_stage_options = option_group(
    [click.option(f"--{stage}", f"{stage}_choices", default=None, metavar="A,B,…",
                  help=f"{stage.upper() if stage != 'turn' else 'Turn detector'} providers to compare, e.g. "
                       f"{STAGE_HELP[stage]} (`turnbench matrix --list` shows what is registered).")
     for stage in GRID_STAGES],
    {"choices": lambda v: {s: v[f"{s}_choices"] for s in GRID_STAGES}})


@click.command()
@click.argument("scenario", required=False)
@_stage_options
@click.option("--cells", "cells_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A matrix file (YAML): `cells` listed one by one, or a `grid`, on top of a `base` (docs/matrix.md).")
@click.option("--rounds", type=click.IntRange(1, 50), default=2, show_default=True,
              help="Every cell runs once per round; rounds alternate the cells' order.")
@click.option("--calls", "-n", type=click.IntRange(min=1), default=None,
              help="Calls per cell and round (default: the scenario's).")
@click.option("--concurrency", "-c", type=click.IntRange(min=1), default=None,
              help="Calls in flight at once (default: the scenario's).")
@click.option("--seed", type=int, default=None, help="Seed for fixture picks, the same in every cell (default: scenario).")
@click.option("--provider-opt", "provider_opts", multiple=True, metavar="STAGE.KEY=VALUE",
              help="A provider option every cell gets (repeatable), e.g. llm.max_tokens=32; a cell's own wins.")
@click.option("--agent-args", default="", metavar="'OPTIONS'",
              help="More `agent serve --reference` options every cell gets, e.g. \"--eot-silence-ms 400\".")
@click.option("--prices", "prices_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Prices per provider (YAML: stt per audio minute, llm per 1k tokens, tts per 1k characters): "
                   "adds cost per call minute beside latency.")
@transport_options()
@click.option("--list", "list_providers", is_flag=True, help="List the registered providers of each stage and exit.")
@output_options("matrix folder")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar on stderr.")
def matrix(scenario: str | None, choices: dict[str, str | None], cells_file: Path | None, rounds: int,
           calls: int | None, concurrency: int | None, seed: int | None,
           provider_opts: tuple[str, ...], agent_args: str, prices_file: Path | None, transport: str | None,
           transport_values: dict, list_providers: bool, out_dir: Path, fixtures_dir: Path | None,
           progress: bool) -> None:
    """Compare reference-agent configurations on SCENARIO: every cell (a provider per stage) a
    fresh agent, the same fixtures and seed, cells interleaved over --rounds.

    A grid (`--stt pocketsphinx,whisper --tts piper,espeak`: every combination) or a matrix file
    (--cells). Writes reports/<time>-matrix-<scenario>/ with matrix.json (turnbench.matrix/1),
    matrix.html, and one run folder per cell and round (cells/<cell>/r<round>/). A cell whose
    agent fails is reported failed and the matrix goes on. Exits 1 if any cell failed.
    """
    from harness.agent.providers.registry import STAGES, available
    if list_providers:
        for stage in STAGES:
            click.echo(f"{stage:5} {', '.join(available(stage))}")
        raise SystemExit(EXIT_OK)
    if scenario is None:
        fail("give a SCENARIO (a file or a built-in name: `turnbench scenarios list`)", EXIT_USAGE)
    cells = _cells(cells_file, choices, provider_opts)
    from harness.matrix.cost import load_prices
    prices = load_prices(prices_file) if prices_file is not None else None
    from harness.service.inputs import RunInputs
    inputs = RunInputs.resolve(scenario, fixtures_dir=fixtures_dir, target="reference", transport=transport,
                               transport_values=transport_values, agent_args=agent_args, seed=seed, calls=calls,
                               concurrency=concurrency)
    from harness.matrix.run import MatrixRun
    from harness.results.folder import RunFolder
    top = RunFolder.create(out_dir, f"matrix-{inputs.name}")
    top.close()
    click.echo(f"matrix: {len(cells)} cells × {rounds} rounds × {inputs.calls} calls of {inputs.name} → {top.path}",
               err=True)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=inputs.calls, unit="call", leave=False, dynamic_ncols=True)
    say = (lambda s: (bar.write(s, file=click.get_text_stream("stderr")) if bar is not None
                      else click.echo(s, err=True)))
    mx = MatrixRun(inputs, cells, top, rounds, prices, say=say, bar=bar)
    try:
        doc = asyncio.run(mx.run())
    finally:
        if bar is not None:
            bar.close()
    from harness.matrix.analysis import matrix_table
    click.echo(matrix_table(doc))
    click.echo(f"matrix folder: {top.path} (matrix.json, matrix.html, cells/<cell>/r<round>/)")
    if mx.interrupted:
        fail(f"interrupted; every finished cell is in {top.path}", mx.stop.exit_code)
    raise SystemExit(EXIT_FAILED if any(c["status"] == "failed" for c in doc["cells"]) else EXIT_OK)


def _cells(cells_file: Path | None, choices: dict[str, str | None], provider_opts: tuple[str, ...]):
    """The cells from the file or the grid, with --provider-opt on every cell (a cell's own wins)."""
    from dataclasses import replace

    from harness.agent.providers.registry import parse_provider_opts
    from harness.matrix.plan import cells_from_grid, check_cells, load_matrix_file, parse_choices
    grid = {s: parse_choices(s, v) for s, v in choices.items() if v is not None}
    if cells_file is not None and grid:
        raise InputError("give the cells either as --stt/--llm/--tts/--vad/--turn choices or as --cells FILE, not both")
    cells = load_matrix_file(cells_file) if cells_file is not None else cells_from_grid(grid)
    common = parse_provider_opts(provider_opts)
    if common:
        cells = [replace(c, options={s: {**common.get(s, {}), **c.options.get(s, {})}
                                     for s in {*common, *c.options}}) for c in cells]
    check_cells(cells)
    return cells
