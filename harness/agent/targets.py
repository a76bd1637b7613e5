"""Turn a `--target` value into a URL to call, starting a built-in agent when asked to."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harness.agent.oracle_config import OracleConfig
from harness.errors import InputError
from harness.transports.base import TargetUnreachable, auth_headers
from harness.transports.registry import transport_entry

if TYPE_CHECKING:  # the server module imports aiohttp and the oracle: only when a target is opened
    from harness.agent.server import OracleServer

BUILTIN_TARGETS = ("reference", "oracle")


@dataclass(frozen=True)
class ResolvedTarget:
    """Where calls go, and how reports name the target."""

    url: str
    label: str
    info: dict = field(default_factory=dict)
    """What the agent says of itself (/health of a built-in agent: providers, pipeline)."""
    oracle: OracleServer | None = None
    """The in-process oracle server (its ground truth), for `--target oracle`."""


def check_target(target: str, transport: str = "ws-pcm") -> None:
    """Validate a target string early (before any call); raises InputError saying what is wrong."""
    entry = transport_entry(transport)
    entry.check_available()
    if target in BUILTIN_TARGETS:
        return
    if "://" not in target:
        raise InputError(f"--target {target!r}: expected {entry.url_example} or one of: {', '.join(BUILTIN_TARGETS)}")
    entry.check_url(target)


async def probe(url: str, transport: str = "ws-pcm", timeout_s: float = 5.0, headers: dict | None = None) -> None:
    """Is anything there? The transport's own probe, else a WebSocket upgrade; raises
    `TargetUnreachable` saying what went wrong."""
    entry = transport_entry(transport)
    if entry.probe is not None:
        await entry.probe(url, timeout_s)
        return
    from harness.transports.ws_pcm import probe as ws_probe
    await ws_probe(url, timeout_s, headers)


@contextlib.asynccontextmanager
async def open_target(target: str, oracle_cfg: OracleConfig | None = None,
                      barge_in_threshold_ms: float = 500.0, agent_args: str = "",
                      agent_log: Path | None = None, transport: str = "ws-pcm",
                      token: str | None = None) -> AsyncIterator[ResolvedTarget]:
    """Yield a reachable target; raises TargetUnreachable (exit 3) if a URL does not answer.

    `reference` starts `turnbench agent serve --reference AGENT_ARGS` in the background (log in
    `agent_log`) and stops it afterwards; `oracle` serves the oracle in this process, where the
    calibration can read its ground truth. `token`: the agent's bearer token (a built-in agent
    is started with it).
    """
    check_target(target, transport)
    if target == "oracle":
        from harness.agent.server import OracleServer
        srv = OracleServer(oracle_cfg or OracleConfig(), barge_in_threshold_ms=barge_in_threshold_ms)
        srv.token = token
        async with srv:
            _served(srv.health(), transport, "oracle")
            yield ResolvedTarget(srv.url_for(transport), "oracle", srv.health(), oracle=srv)
        return
    if target == "reference":
        from harness.agent.launch import launched_reference
        async with launched_reference(agent_args, agent_log or Path("agent.log"), token=token) as agent:
            _served(agent.health, transport, "the reference agent")
            yield ResolvedTarget(agent.urls.get(transport, agent.url), "reference", agent.health)
        return
    await probe(target, transport, headers=auth_headers(token))
    yield ResolvedTarget(target, target)


def _served(health: dict, transport: str, who: str) -> None:
    if transport not in health.get("transports", ["ws-pcm"]):
        needs = transport_entry(transport).requires
        raise TargetUnreachable(f"{who} does not serve --transport {transport} here (serves: "
                                f"{', '.join(health.get('transports', []))})"
                                + (f"; it needs pip install 'turnbench[{needs[1]}]'" if needs else ""))
