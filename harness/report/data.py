"""A run folder as the report and the gate read it: run.json, summary.json, turns.jsonl, timelines.jsonl."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.errors import InputError
from harness.metrics.summary_model import validate_summary
from harness.results.folder import read_rows


class RunInputError(InputError):
    """A run folder (or file) that cannot be read; the message names the file and, where known, the line."""


@dataclass
class RunData:
    path: Path
    run: dict
    summary: dict
    turns: list[dict]
    label: str
    timelines_path: Path | None = None
    _timelines: dict[str, dict] | None = field(default=None, repr=False)

    @property
    def has_turns(self) -> bool:
        return bool(self.turns)

    def column(self, name: str, kind: str | None = None) -> np.ndarray:
        """Non-null values of one turn field as floats (optionally one turn kind only)."""
        rows = self.turns if kind is None else [t for t in self.turns if t.get("kind") == kind]
        return np.array([t[name] for t in rows if t.get(name) is not None], dtype=np.float64)

    def timelines(self, call_ids: set[str]) -> dict[str, dict]:
        """The timelines.jsonl rows of these calls (read once, only the wanted lines decoded)."""
        if self.timelines_path is None or not self.timelines_path.exists():
            return {}
        if self._timelines is None:
            self._timelines = {}
        missing = call_ids - set(self._timelines)
        if missing:
            # pictures only: a line that is not a timeline row (torn, not UTF-8) is skipped, never fatal
            with self.timelines_path.open(encoding="utf-8", errors="replace") as f:
                for line in f:
                    head = line[:200]
                    if not any(f'"call_id": "{c}"' in head for c in missing):
                        continue
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    if isinstance(row, dict) and isinstance(row.get("call_id"), str):
                        self._timelines[row["call_id"]] = row
        return {c: self._timelines[c] for c in call_ids if c in self._timelines}


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise RunInputError(f"{path}: missing (is {path.parent} a turnbench run folder?)") from None
    except UnicodeDecodeError as e:
        raise RunInputError(f"{path}: not UTF-8 text (byte {e.start}): not a turnbench result file") from None
    except json.JSONDecodeError as e:
        raise RunInputError(f"{path}:{e.lineno}: not valid JSON: {e.msg}") from None
    if not isinstance(data, dict):
        raise RunInputError(f"{path}: expected a JSON object")
    return data


def read_turns_strict(path: Path) -> list[dict]:
    """Every row of turns.jsonl (see `read_rows`)."""
    try:
        return read_rows(path, "turnbench.turn/")
    except InputError as e:
        raise RunInputError(str(e)) from None


def load_run(path: Path | str, label: str | None = None) -> RunData:
    """Read a run folder. A `summary.json` file alone is accepted (no turns: headline only)."""
    path = Path(path)
    if path.is_file():
        summary = _read_json(path)
        run_path = path.parent / "run.json"
        run = _read_json(run_path) if run_path.exists() else {}
        turns_path = path.parent / "turns.jsonl"
        turns = read_turns_strict(turns_path) if turns_path.exists() and path.name == "summary.json" else []
        folder = path.parent
    elif path.is_dir():
        folder = path
        summary = _read_json(path / "summary.json")
        run = _read_json(path / "run.json") if (path / "run.json").exists() else {}
        turns = read_turns_strict(path / "turns.jsonl")
    else:
        raise RunInputError(f"{path}: no such run folder or summary.json")
    schema = str(summary.get("schema", "")) if isinstance(summary, dict) else ""
    if not schema.startswith("turnbench.summary/"):
        raise RunInputError(f"{folder / 'summary.json'}: schema is {schema!r}, expected turnbench.summary/2 (or /1)")
    try:
        validate_summary(summary, path if path.is_file() else folder / "summary.json")
    except InputError as e:
        raise RunInputError(str(e)) from None
    return RunData(folder, run, summary, turns, label or folder.name, folder / "timelines.jsonl")
