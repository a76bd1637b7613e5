"""Writes a run folder as the run goes, so a crash or Ctrl-C loses nothing already measured."""

from __future__ import annotations

import json
import os
import platform
import re
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import harness
from harness.errors import InputError

RUN_SCHEMA = "turnbench.run/1"


def _git_sha(cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def machine_info() -> dict:
    """What the numbers were measured on."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"hostname": socket.gethostname(), "platform": platform.platform(), "cpu": cpu,
            "cores": os.cpu_count(), "python": sys.version.split()[0]}


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class RunFolder:
    """One run's output directory."""

    def __init__(self, path: Path):
        self.path = path
        self.path.mkdir(parents=True, exist_ok=True)
        self.turns_path = path / "turns.jsonl"
        self.turns_written = 0
        self._turns = self.turns_path.open("a", buffering=1)
        self.timelines_path = path / "timelines.jsonl"
        self._timelines = None

    @classmethod
    def create(cls, base: Path, label: str) -> RunFolder:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-") or "run"
        path = base / f"{stamp}-{slug}"
        n = 1
        while path.exists():
            n += 1
            path = base / f"{stamp}-{slug}-{n}"
        return cls(path)

    def write_json(self, name: str, payload: dict) -> Path:
        """Write atomically (tmp + rename): a reader never sees half a file."""
        target = self.path / name
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_text(json.dumps(payload, indent=1, default=str, allow_nan=False) + "\n")
        tmp.replace(target)
        return target

    def append_turns(self, rows: list[dict]) -> None:
        for row in rows:
            self._turns.write(json.dumps(row, allow_nan=False) + "\n")
        self._turns.flush()
        self.turns_written += len(rows)

    def append_timeline(self, row: dict) -> None:
        """One call's waveforms (see harness.metrics.envelope), written as the call completes."""
        if self._timelines is None:
            self._timelines = self.timelines_path.open("a", buffering=1)
        self._timelines.write(json.dumps(row, allow_nan=False) + "\n")
        self._timelines.flush()

    def close(self) -> None:
        self._turns.close()
        if self._timelines is not None:
            self._timelines.close()


SECRET_OPTIONS = ("--agent-token", "--token")
SECRET_PAIR_OPTIONS = ("--realtime-header",)
"""KEY=VALUE options whose values may be credentials (`Authorization=Bearer …`): the key is kept."""


def redact_argv(argv: list[str]) -> list[str]:
    """The command line with every secret option's value replaced by `***`."""
    out, hide, pair = [], False, False
    for arg in argv:
        name, eq, rest = arg.partition("=")
        if hide:
            out.append("***")
            hide = False
        elif pair:
            out.append(f"{name}=***" if eq else "***")
            pair = False
        elif name in SECRET_OPTIONS and eq:
            out.append(f"{name}=***")
        elif name in SECRET_PAIR_OPTIONS and eq:
            out.append(f"{name}={rest.partition('=')[0]}=***")
        else:
            out.append(arg)
            hide, pair = arg in SECRET_OPTIONS, arg in SECRET_PAIR_OPTIONS
    return out


def run_metadata(**fields) -> dict:
    """run.json: versions, git sha, machine, and whatever the command adds (scenario, target, …)."""
    root = Path(harness.__file__).resolve().parents[1]
    return {"schema": RUN_SCHEMA, "turnbench_version": harness.__version__, "git_sha": _git_sha(root),
            "machine": machine_info(), "started_at": now_iso(), "argv": redact_argv(sys.argv), "clock": "perf_counter_ns",
            "started_perf_ns": time.perf_counter_ns(), **fields}


def read_rows(path: Path, schema: str | None = None, missing_ok: bool = False) -> list[dict]:
    """Every row of a JSON-lines result file (turns.jsonl, timelines.jsonl, calls.jsonl). A torn
    *last* line (a crash mid-write) is dropped; any other bad line, bytes that are not UTF-8, or a
    row without the expected `schema` prefix is an `InputError` naming the file and line."""
    if not path.exists():
        if missing_ok:
            return []
        raise InputError(f"{path}: missing (is {path.parent} a turnbench run folder?)")
    try:
        lines = path.read_bytes().decode("utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text (byte {e.start}): not a turnbench result file") from None
    rows: list[dict] = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            if i == len(lines):
                break
            raise InputError(f"{path}:{i}: not valid JSON: {e.msg}") from None
        if not isinstance(row, dict) or (schema and not str(row.get("schema", "")).startswith(schema)):
            raise InputError(f"{path}:{i}: not a turnbench row" + (f" (schema {schema}1)" if schema else ""))
        rows.append(row)
    return rows
