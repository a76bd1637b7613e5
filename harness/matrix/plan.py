"""Which reference-agent configurations a matrix compares: a grid from the command line
(`--stt a,b --tts p,q`) or a YAML file listing the cells, each resolved to the
`agent serve --reference` options that build it."""

from __future__ import annotations

import itertools
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from harness.agent.providers.registry import STAGES, available
from harness.errors import InputError

MAX_CELLS = 64
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,47}$")


class CellSpec(BaseModel):
    """One configuration of the reference agent: a provider per stage (unset: the base's, then
    the agent's default), their constructor options, and any other `agent serve` options."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, description="How tables and folders name the cell (default: its providers).")
    vad: str | None = None
    stt: str | None = None
    llm: str | None = None
    tts: str | None = None
    turn: str | None = None
    options: dict[Literal["vad", "stt", "llm", "tts", "turn"], dict[str, Any]] = Field(default_factory=dict)
    """Constructor options per stage, as `--provider-opt STAGE.KEY=VALUE` gives them."""
    agent_args: str = ""
    """More `turnbench agent serve --reference` options, e.g. `--eot-silence-ms 400`."""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and not NAME.match(v):
            raise ValueError(f"{v!r}: a cell name is 1-48 letters, digits, '.', '_', '+' or '-' (it names a folder)")
        return v

    @field_validator("agent_args")
    @classmethod
    def _args(cls, v: str) -> str:
        words = shlex.split(v)
        for own in ("--vad", "--stt", "--llm", "--tts", "--turn", "--provider-opt", "--port", "--log", "--ready-file"):
            if any(w == own or w.startswith(own + "=") for w in words):
                raise ValueError(f"{own} is set by the cell's own fields (or by the matrix), not in agent_args")
        return v


class MatrixFile(BaseModel):
    """A matrix file: `cells` listed one by one, or a `grid` of choices per stage (every
    combination), on top of `base` (what every cell shares)."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    base: CellSpec = Field(default_factory=CellSpec)
    grid: dict[Literal["vad", "stt", "llm", "tts", "turn"], list[str]] | None = None
    cells: list[CellSpec] | None = None

    @model_validator(mode="after")
    def _one_of(self) -> MatrixFile:
        if (self.grid is None) == (self.cells is None):
            raise ValueError("give exactly one of `cells` (a list) or `grid` (choices per stage)")
        if self.cells is not None and not self.cells:
            raise ValueError("`cells` is empty")
        return self


@dataclass(frozen=True)
class Cell:
    """A resolved cell: every stage's provider named, and the agent's command-line options."""

    name: str
    providers: dict[str, str]
    """Stage → provider name, only the stages the cell or base set (the rest: the agent's defaults)."""
    options: dict[str, dict] = field(default_factory=dict)
    agent_args: str = ""

    def command_args(self) -> str:
        """The `agent serve --reference` options that build this cell."""
        words: list[str] = []
        for stage, name in self.providers.items():
            words += [f"--{stage}", name]
        for stage, opts in self.options.items():
            for key, value in opts.items():
                text = value if isinstance(value, str) else json.dumps(value)
                words += ["--provider-opt", f"{stage}.{key}={text}"]
        return " ".join([shlex.join(words), self.agent_args]).strip()

    def to_json(self) -> dict:
        return {"name": self.name, "providers": self.providers, "options": self.options,
                "agent_args": self.agent_args, "command_args": self.command_args()}


def _merge(base: CellSpec, cell: CellSpec) -> tuple[dict[str, str], dict[str, dict], str]:
    providers = {s: v for s in STAGES if (v := getattr(cell, s) or getattr(base, s))}
    options = {s: {**base.options.get(s, {}), **cell.options.get(s, {})}
               for s in STAGES if base.options.get(s) or cell.options.get(s)}
    return providers, options, " ".join(a for a in (base.agent_args, cell.agent_args) if a)


def _auto_name(providers: dict[str, str], varying: list[str]) -> str:
    parts = [providers[s] for s in varying if s in providers]
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", "+".join(parts)) or "reference"


def cells_from_grid(grid: dict[str, list[str]], base: CellSpec | None = None) -> list[Cell]:
    """Every combination of the grid's choices, in order (the first stage varies slowest)."""
    base = base or CellSpec()
    stages = [s for s in STAGES if grid.get(s)]
    if not stages:
        return []
    varying = [s for s in stages if len(grid[s]) > 1]
    out = []
    for combo in itertools.product(*(grid[s] for s in stages)):
        spec = CellSpec(**dict(zip(stages, combo)))
        providers, options, args = _merge(base, spec)
        out.append(Cell(_auto_name(providers, varying or stages), providers, options, args))
    return out


def cells_from_specs(specs: list[CellSpec], base: CellSpec) -> list[Cell]:
    """Listed cells on top of the base; an unnamed cell is named by the providers that differ."""
    merged = [_merge(base, s) for s in specs]
    varying = [s for s in STAGES if len({m[0].get(s) for m in merged}) > 1]
    return [Cell(spec.name or _auto_name(p, varying), p, o, a) for spec, (p, o, a) in zip(specs, merged)]


def parse_choices(stage: str, text: str | None) -> list[str]:
    """`--stt a,b` → ["a", "b"] (InputError on an empty item)."""
    if text is None:
        return []
    items = [t.strip() for t in text.split(",")]
    if any(not t for t in items):
        raise InputError(f"--{stage} {text!r}: an empty provider name (write --{stage} a,b)")
    return items


def check_cells(cells: list[Cell], where: str = "") -> None:
    """Every provider registered, names unique, and not too many cells; InputError otherwise."""
    if not cells:
        raise InputError(f"{where}no cells: give --stt/--llm/--tts/--vad/--turn choices or a matrix file")
    if len(cells) > MAX_CELLS:
        raise InputError(f"{where}{len(cells)} cells: at most {MAX_CELLS} (each is a fresh agent per round)")
    seen: dict[str, Cell] = {}
    for c in cells:
        if c.name in seen:
            raise InputError(f"{where}two cells are named {c.name!r}: give each a `name`")
        seen[c.name] = c
        for stage, name in c.providers.items():
            if name not in available(stage):
                raise InputError(f"{where}cell {c.name!r}: unknown {stage} provider {name!r} "
                                 f"(registered: {', '.join(available(stage))})")


def load_matrix_file(path: Path) -> list[Cell]:
    """A matrix file's cells, validated (errors read `file:line: field: what is wrong`)."""
    from harness.scenario.loader import ScenarioError, line_of, read_yaml_model
    doc, root, _raw = read_yaml_model(path, MatrixFile, what="matrix file",
                                      shape="a mapping with `cells` (a list) or `grid` (choices per stage)")
    named = [(("base", s), getattr(doc.base, s)) for s in STAGES]
    named += [(("cells", i, s), getattr(c, s)) for i, c in enumerate(doc.cells or []) for s in STAGES]
    named += [(("grid", s, j), v) for s, vs in (doc.grid or {}).items() for j, v in enumerate(vs)]
    for loc, name in named:
        stage = loc[-1] if loc[0] != "grid" else loc[1]
        if name is not None and name not in available(stage):
            where = ".".join(str(k) if not isinstance(k, int) else f"[{k}]" for k in loc).replace(".[", "[")
            raise ScenarioError(path, line_of(root, loc), where,
                                f"unknown {stage} provider {name!r} (registered: {', '.join(available(stage))})")
    cells = cells_from_grid(doc.grid, doc.base) if doc.grid is not None else cells_from_specs(doc.cells, doc.base)
    check_cells(cells, f"{path}: ")
    return cells
