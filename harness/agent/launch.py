"""Start the reference agent as a background process for one benchmark, and stop it after.

The agent runs in its own process so its model inference never shares the caller's event loop
or GIL: the caller's clock and pacing stay clean. It writes a ready file (its URL and health)
once it listens; its log goes to `agent.log` in the run folder, and every event it sends (the
per-stage trace, one JSON line each) to `agent_events.jsonl`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import EXIT_TARGET, EXIT_USAGE, TurnbenchError
from harness.transports.base import TargetUnreachable

READY_TIMEOUT_S = 600.0


class AgentStartFailed(TurnbenchError):
    """The background agent exited or never became ready; the message quotes its log."""

    def __init__(self, message: str, usage: bool = False):
        super().__init__(message)
        self.usage = usage
        """True when the agent refused its options (exit 2), not a runtime failure."""
        self.exit_code = EXIT_USAGE if usage else EXIT_TARGET


@dataclass(frozen=True)
class LaunchedAgent:
    url: str
    health: dict
    pid: int
    urls: dict = field(default_factory=dict)
    """Where it answers over each transport."""


def agent_command(agent_args: str | list[str] = (), kind: str = "--reference") -> list[str]:
    """The `turnbench agent serve --reference` (or `--oracle`) command line with extra options."""
    extra = shlex.split(agent_args) if isinstance(agent_args, str) else list(agent_args)
    return [sys.executable, "-m", "harness.cli", "agent", "serve", kind, "--port", "0", *extra]


def _tail(path: Path, lines: int = 12) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join("  agent: " + line for line in text[-lines:])


def launched_reference(agent_args: str | list[str], log_path: Path, ready_timeout_s: float = READY_TIMEOUT_S,
                       token: str | None = None):
    """Run `turnbench agent serve --reference` in the background until the block exits; every
    event it sends goes to `<log>_events.jsonl`. A token goes through the environment (never
    onto a command line another user can read)."""
    events = log_path.with_name(log_path.stem + "_events.jsonl")
    env = {**os.environ, "TURNBENCH_AGENT_TOKEN": token} if token else None
    return launched_agent([*agent_command(agent_args), "--log", str(events)], log_path, ready_timeout_s, env=env)


@contextlib.asynccontextmanager
async def launched_agent(cmd: list[str], log_path: Path, ready_timeout_s: float = READY_TIMEOUT_S,
                         preexec_fn=None, label: str = "the reference agent",
                         env: dict | None = None) -> AsyncIterator[LaunchedAgent]:
    """Run an `agent serve` command line in the background, wait until it listens (its ready
    file), yield where it answers, and stop it (SIGTERM, then SIGKILL) when the block exits."""
    ready = log_path.with_name(log_path.stem + ".ready.json")
    ready.unlink(missing_ok=True)
    log = log_path.open("ab")
    proc = await asyncio.create_subprocess_exec(*cmd, "--ready-file", str(ready), stdin=asyncio.subprocess.DEVNULL,
                                                stdout=log, stderr=log, preexec_fn=preexec_fn, env=env)
    try:
        deadline = time.monotonic() + ready_timeout_s
        while not ready.exists():
            if proc.returncode is not None:
                raise AgentStartFailed(f"{label} exited with code {proc.returncode} before it was ready "
                                       f"(log: {log_path}):\n{_tail(log_path)}", usage=proc.returncode == 2)
            if time.monotonic() > deadline:
                raise AgentStartFailed(f"{label} was not ready after {ready_timeout_s:.0f} s "
                                       f"(log: {log_path}):\n{_tail(log_path)}")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(proc.wait(), 0.05)
        info = json.loads(ready.read_text())
        ready.unlink(missing_ok=True)
        yield LaunchedAgent(info["url"], info.get("health", {}), proc.pid, info.get("urls", {}))
        if proc.returncode is not None:
            raise TargetUnreachable(f"{label} died during the run (code {proc.returncode}; "
                                    f"log: {log_path}):\n{_tail(log_path)}")
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log.close()
