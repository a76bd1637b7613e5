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
import shlex
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterator

from harness.transports.base import TargetUnreachable

READY_TIMEOUT_S = 600.0


class AgentStartFailed(RuntimeError):
    """The background agent exited or never became ready; the message quotes its log."""

    def __init__(self, message: str, usage: bool = False):
        super().__init__(message)
        self.usage = usage
        """True when the agent refused its options (exit 2), not a runtime failure."""


@dataclass(frozen=True)
class LaunchedAgent:
    url: str
    health: dict
    pid: int
    urls: dict = field(default_factory=dict)
    """Where it answers over each transport."""


def agent_command(agent_args: str | list[str] = ()) -> list[str]:
    """The `turnbench agent serve --reference` command line with the user's extra options."""
    extra = shlex.split(agent_args) if isinstance(agent_args, str) else list(agent_args)
    return [sys.executable, "-m", "harness.cli", "agent", "serve", "--reference", "--port", "0", *extra]


def _tail(path: Path, lines: int = 12) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join("  agent: " + line for line in text[-lines:])


@contextlib.asynccontextmanager
async def launched_reference(agent_args: str | list[str], log_path: Path,
                             ready_timeout_s: float = READY_TIMEOUT_S) -> AsyncIterator[LaunchedAgent]:
    """Run `turnbench agent serve --reference` in the background until the block exits."""
    ready = log_path.with_name(log_path.stem + ".ready.json")
    ready.unlink(missing_ok=True)
    events = log_path.with_name(log_path.stem + "_events.jsonl")
    cmd = [*agent_command(agent_args), "--ready-file", str(ready), "--log", str(events)]
    log = log_path.open("ab")
    proc = await asyncio.create_subprocess_exec(*cmd, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + ready_timeout_s
        while not ready.exists():
            if proc.returncode is not None:
                raise AgentStartFailed(f"the reference agent exited with code {proc.returncode} before it was ready "
                                       f"(log: {log_path}):\n{_tail(log_path)}", usage=proc.returncode == 2)
            if time.monotonic() > deadline:
                raise AgentStartFailed(f"the reference agent was not ready after {ready_timeout_s:.0f} s "
                                       f"(log: {log_path}):\n{_tail(log_path)}")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(proc.wait(), 0.05)
        info = json.loads(ready.read_text())
        ready.unlink(missing_ok=True)
        yield LaunchedAgent(info["url"], info.get("health", {}), proc.pid, info.get("urls", {}))
        if proc.returncode is not None:
            raise TargetUnreachable(f"the reference agent died during the run (code {proc.returncode}; "
                                    f"log: {log_path}):\n{_tail(log_path)}")
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
        log.close()
