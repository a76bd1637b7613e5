"""WebRTC signalling URLs, checked without importing aiortc (usage errors come first)."""

from __future__ import annotations

from yarl import URL

from harness.transports.websocket import check_url


def check_http_url(url: str) -> URL:
    """Parse an http(s):// signalling URL, or raise ValueError saying what is wrong."""
    return check_url(url, ("http", "https"), "expected http://HOST:PORT/PATH (the agent's WebRTC offer or WHIP endpoint)")


async def probe_http(url: str, timeout_s: float = 5.0) -> None:
    """Is anything answering HTTP there? (A real offer is made per call.) Raises
    `TargetUnreachable` saying what went wrong."""
    import aiohttp

    from harness.transports.base import TargetUnreachable
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
