"""Turn a `--target` value into a URL to call, starting a built-in agent when asked to."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import AsyncIterator

from harness.agent.oracle_config import OracleConfig
from harness.transports.ws_pcm import check_ws_url, probe

BUILTIN_TARGETS = ("oracle",)


@dataclass(frozen=True)
class ResolvedTarget:
    """Where calls go, and how reports name the target."""

    url: str
    label: str


def check_target(target: str) -> None:
    """Validate a target string early (before any call); raises ValueError saying what is wrong."""
    if target in BUILTIN_TARGETS:
        return
    if "://" not in target:
        raise ValueError(f"--target {target!r}: expected a ws:// URL or one of: {', '.join(BUILTIN_TARGETS)}")
    check_ws_url(target)


@contextlib.asynccontextmanager
async def open_target(target: str, oracle_cfg: OracleConfig | None = None,
                      barge_in_threshold_ms: float = 500.0) -> AsyncIterator[ResolvedTarget]:
    """Yield a reachable target; raises TargetUnreachable (exit 3) if a URL does not answer."""
    check_target(target)
    if target == "oracle":
        from harness.agent.server import OracleServer
        async with OracleServer(oracle_cfg or OracleConfig(), barge_in_threshold_ms=barge_in_threshold_ms) as srv:
            yield ResolvedTarget(srv.url, "oracle")
        return
    await probe(target)
    yield ResolvedTarget(target, target)
