"""Turn a `--target` value into a URL to call, starting a built-in agent when asked to."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterator

from harness.agent.oracle_config import OracleConfig
from harness.transports.base import TargetUnreachable
from harness.transports.websocket import check_ws_url

BUILTIN_TARGETS = ("reference", "oracle")


@dataclass(frozen=True)
class ResolvedTarget:
    """Where calls go, and how reports name the target."""

    url: str
    label: str
    info: dict = field(default_factory=dict)
    """What the agent says of itself (/health of a built-in agent: providers, pipeline)."""
    oracle: object | None = None
    """The in-process oracle server (its ground truth), for `--target oracle`."""


def check_target(target: str, transport: str = "ws-pcm") -> None:
    """Validate a target string early (before any call); raises ValueError saying what is wrong."""
    if transport == "webrtc":
        try:
            import aiortc  # noqa: F401
        except ImportError:
            raise ValueError("--transport webrtc needs aiortc: pip install -e '.[webrtc]' "
                             "(bash scripts/setup.sh run installs it)") from None
    if target in BUILTIN_TARGETS:
        return
    want = "an http:// offer or WHIP URL" if transport == "webrtc" else "a ws:// URL"
    if "://" not in target:
        raise ValueError(f"--target {target!r}: expected {want} or one of: {', '.join(BUILTIN_TARGETS)}")
    try:
        if transport == "webrtc":
            from harness.transports.webrtc_url import check_http_url
            check_http_url(target)
        else:
            check_ws_url(target)
    except ValueError as e:
        raise ValueError(f"--target {e} (for --transport {transport})") from None


async def probe(url: str, transport: str = "ws-pcm", timeout_s: float = 5.0) -> None:
    """Is anything there? A WebSocket upgrade (ws-pcm, twilio) or any HTTP answer (webrtc:
    a real offer is made per call); raises `TargetUnreachable` saying what went wrong."""
    if transport != "webrtc":
        from harness.transports.ws_pcm import probe as ws_probe
        await ws_probe(url, timeout_s)
        return
    import aiohttp
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as s:
            async with s.options(url) as r:
                await r.read()
    except (aiohttp.ClientConnectorError, aiohttp.ClientOSError) as e:
        reason = getattr(e, "os_error", None) or e
        raise TargetUnreachable(f"{url}: cannot connect ({getattr(reason, 'strerror', None) or reason}); "
                                "is the agent running?") from None
    except (aiohttp.ClientError, TimeoutError) as e:
        raise TargetUnreachable(f"{url}: {type(e).__name__}: {e or 'timed out'}") from None


@contextlib.asynccontextmanager
async def open_target(target: str, oracle_cfg: OracleConfig | None = None,
                      barge_in_threshold_ms: float = 500.0, agent_args: str = "",
                      agent_log: Path | None = None, transport: str = "ws-pcm") -> AsyncIterator[ResolvedTarget]:
    """Yield a reachable target; raises TargetUnreachable (exit 3) if a URL does not answer.

    `reference` starts `turnbench agent serve --reference AGENT_ARGS` in the background (log in
    `agent_log`) and stops it afterwards; `oracle` serves the oracle in this process, where the
    calibration can read its ground truth.
    """
    check_target(target, transport)
    if target == "oracle":
        from harness.agent.server import OracleServer
        async with OracleServer(oracle_cfg or OracleConfig(), barge_in_threshold_ms=barge_in_threshold_ms) as srv:
            _served(srv.health(), transport, "oracle")
            yield ResolvedTarget(srv.url_for(transport), "oracle", srv.health(), oracle=srv)
        return
    if target == "reference":
        from harness.agent.launch import launched_reference
        async with launched_reference(agent_args, agent_log or Path("agent.log")) as agent:
            _served(agent.health, transport, "the reference agent")
            yield ResolvedTarget(agent.urls.get(transport, agent.url), "reference", agent.health)
        return
    await probe(target, transport)
    yield ResolvedTarget(target, target)


def _served(health: dict, transport: str, who: str) -> None:
    if transport not in health.get("transports", ["ws-pcm"]):
        raise TargetUnreachable(f"{who} does not serve --transport {transport} here (serves: "
                                f"{', '.join(health.get('transports', []))}); for webrtc: pip install -e '.[webrtc]'")
