"""A matrix run: every cell a fresh reference agent, cells interleaved round by round (forward,
then backward: the shared machine's drift falls evenly on every cell), the same scenario,
fixtures and seed everywhere. matrix.json and matrix.html are rewritten after each cell, so a
failure or Ctrl-C keeps everything already measured."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

from harness.errors import TurnbenchError
from harness.matrix.analysis import RoundResult, matrix_document
from harness.matrix.cost import Prices
from harness.matrix.plan import Cell
from harness.results.folder import RunFolder, now_iso
from harness.service.inputs import RunInputs
from harness.service.session import benchmark
from harness.service.signals import Stop, stop_on_signals

MATRIX_PAGE = "matrix.html"


def round_order(cells: list[Cell], r: int) -> list[Cell]:
    """Round r (0-based) runs the cells forward on even rounds and backward on odd ones: over
    two rounds every cell sits at the same mean position, so a linear drift cancels."""
    return list(cells) if r % 2 == 0 else list(reversed(cells))


class MatrixRun:
    """The cells × rounds of one matrix, written as it goes."""

    def __init__(self, inputs: RunInputs, cells: list[Cell], top: RunFolder, rounds: int,
                 prices: Prices | None = None, say: Callable[[str], None] = lambda s: None, bar=None):
        self.inputs, self.cells, self.top, self.rounds, self.prices = inputs, cells, top, rounds, prices
        self.say, self.bar = say, bar
        self.results: dict[str, list[RoundResult]] = {c.name: [] for c in cells}
        self.stop = Stop()
        self.started_at = now_iso()
        self.interrupted = False

    def cell_inputs(self, cell: Cell) -> RunInputs:
        """The run inputs of one cell: the matrix's, with the cell's agent options last."""
        # the scenario's and the command line's first, the cell's last: the more specific wins a repeat
        args = " ".join(a for a in (self.inputs.agent_args, cell.command_args()) if a)
        return replace(self.inputs, agent_args=args).with_preload(self.inputs.concurrency)

    def document(self, status: str = "running") -> dict:
        meta = {"status": status, "scenario": self.inputs.name, "rounds": self.rounds,
                "calls_per_round": self.inputs.calls, "concurrency": self.inputs.concurrency,
                "seed": self.inputs.settings.seed, "transport": self.inputs.transport,
                "order": [[c.name for c in round_order(self.cells, r)] for r in range(self.rounds)],
                "started_at": self.started_at, "ended_at": None if status == "running" else now_iso(),
                "common_agent_args": self.inputs.agent_args}
        return matrix_document(self.cells, self.results, self.prices, meta)

    def write(self, status: str = "running") -> dict:
        from harness.report.matrix_page import matrix_html
        doc = self.document(status)
        self.top.write_json("matrix.json", doc)
        (self.top.path / MATRIX_PAGE).write_text(matrix_html(doc))
        return doc

    async def run(self) -> dict:
        """Every round, every cell; SIGINT or SIGTERM ends the cell in flight (its turns kept)."""
        with stop_on_signals(self.stop):
            try:
                for r in range(self.rounds):
                    for i, cell in enumerate(round_order(self.cells, r)):
                        result = await self._one(cell, r + 1, i + 1)
                        self.results[cell.name].append(result)
                        self.write()
                        if result.status == "interrupted":
                            raise asyncio.CancelledError
            except asyncio.CancelledError:  # stopped (maybe while an agent was starting): keep what was measured
                self.interrupted = True
                return self.write("interrupted")
        return self.write("completed")

    async def _one(self, cell: Cell, rnd: int, pos: int) -> RoundResult:
        inputs = self.cell_inputs(cell)
        folder = RunFolder(self.top.path / "cells" / cell.name / f"r{rnd}")
        where = f"round {rnd}/{self.rounds} · cell {pos}/{len(self.cells)} {cell.name}"
        self.say(f"{where}: starting the reference agent ({cell.command_args() or 'defaults'}) …")
        meta = inputs.metadata(calls=inputs.calls, concurrency=inputs.concurrency, matrix=str(self.top.path),
                               cell=cell.name, round=rnd)
        if self.bar is not None:
            self.bar.reset(total=inputs.calls)
            self.bar.set_description_str(f"r{rnd}/{self.rounds} c{pos}/{len(self.cells)} {cell.name}")

        def progress(done: int, p50: float | None) -> None:
            if self.bar is not None:
                self.bar.n = done
                self.bar.set_postfix_str(f"P50 {p50:.0f} ms" if p50 is not None else "P50 —")
                self.bar.refresh()

        providers: dict = {}
        try:
            async with inputs.open_target(folder.path / "agent.log") as resolved:
                meta["agent"] = inputs.agent_meta(resolved)
                providers = {k: v["name"] for k, v in (resolved.info.get("providers") or {}).items()}
                summary, outcome = await benchmark(inputs.spec(resolved.url, run_id=f"{self.top.path.name}-{cell.name}-r{rnd}"),
                                                   folder, meta, inputs.name, f"reference[{cell.name}]", progress)
        except TurnbenchError as e:  # the agent would not start, or died: this cell failed, the matrix goes on
            first = str(e).splitlines()[0]
            folder.write_json("run.json", {**meta, "status": "failed", "error": str(e), "ended_at": now_iso()})
            folder.close()
            self.say(f"{where}: FAILED: {first}")
            return RoundResult(rnd, folder.path, "failed", str(e), providers)
        status = "interrupted" if outcome.interrupted else "completed"
        error = None
        if not summary["latency_ms"]:
            status = "failed" if status == "completed" else status
            ex = summary.get("error_examples") or {}
            error = next(iter(ex.values()), None) or "no reply was heard in any turn"
            self.say(f"{where}: FAILED: {error.splitlines()[0]}")
        else:
            lat = summary["latency_ms"]
            self.say(f"{where}: P50 {lat['p50']:.0f} ms, P99 {lat['p99']:.0f} ms over {lat['n']} turns")
        return RoundResult(rnd, folder.path, status, error, providers)
