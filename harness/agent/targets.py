"""Turn a `--target` value into a URL to call, starting a built-in agent when asked to."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterator

from harness.agent.oracle_config import OracleConfig
from harness.transports.ws_pcm import check_ws_url, probe

BUILTIN_TARGETS = ("reference", "oracle")


@dataclass(frozen=True)
class ResolvedTarget:
    """Where calls go, and how reports name the target."""

    url: str
    label: str
    info: dict = field(default_factory=dict)
    """What the agent says of itself (/health of a built-in agent: providers, pipeline)."""


def check_target(target: str) -> None:
    """Validate a target string early (before any call); raises ValueError saying what is wrong."""
    if target in BUILTIN_TARGETS:
        return
    if "://" not in target:
        raise ValueError(f"--target {target!r}: expected a ws:// URL or one of: {', '.join(BUILTIN_TARGETS)}")
    check_ws_url(target)


@contextlib.asynccontextmanager
async def open_target(target: str, oracle_cfg: OracleConfig | None = None,
                      barge_in_threshold_ms: float = 500.0, agent_args: str = "",
                      agent_log: Path | None = None) -> AsyncIterator[ResolvedTarget]:
    """Yield a reachable target; raises TargetUnreachable (exit 3) if a URL does not answer.

    `reference` starts `turnbench agent serve --reference AGENT_ARGS` in the background (log in
    `agent_log`) and stops it afterwards; `oracle` serves the oracle in this process, where the
    calibration can read its ground truth.
    """
    check_target(target)
    if target == "oracle":
        from harness.agent.server import OracleServer
        async with OracleServer(oracle_cfg or OracleConfig(), barge_in_threshold_ms=barge_in_threshold_ms) as srv:
            yield ResolvedTarget(srv.url, "oracle", srv.health())
        return
    if target == "reference":
        from harness.agent.launch import launched_reference
        async with launched_reference(agent_args, agent_log or Path("agent.log")) as agent:
            yield ResolvedTarget(agent.url, "reference", agent.health)
        return
    await probe(target)
    yield ResolvedTarget(target, target)
