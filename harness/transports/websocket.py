"""Opening a client WebSocket with errors that name the URL and what went wrong (exit code 3)."""

from __future__ import annotations

import aiohttp
from yarl import URL

from harness.transports import stamping
from harness.transports.base import TargetUnreachable


def check_url(url: str, schemes: tuple[str, ...], expected: str) -> URL:
    """Parse `url`, or raise ValueError naming it and what was expected."""
    try:
        u = URL(url)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{url!r}: not a URL ({e})") from None
    if u.scheme not in schemes or not u.host:
        raise ValueError(f"{url!r}: {expected}")
    return u


def check_ws_url(url: str) -> URL:
    """Parse a ws:// or wss:// URL, or raise ValueError saying what is wrong with it."""
    return check_url(url, ("ws", "wss"), "expected ws://HOST:PORT/PATH or wss://…")


async def open_websocket(url: str, timeout_s: float, headers: dict | None = None
                         ) -> tuple[aiohttp.ClientSession, aiohttp.ClientWebSocketResponse,
                                    stamping.StampingProtocol | None]:
    """(session, socket, arrival stamper) for `url`; raises `TargetUnreachable` on failure."""
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout_s))
    try:
        ws = await session.ws_connect(
            url, headers=headers or {}, heartbeat=None, autoping=True, max_msg_size=0,
            timeout=aiohttp.ClientWSTimeout(ws_close=2.0), compress=0, autoclose=True)
    except aiohttp.WSServerHandshakeError as e:
        await session.close()
        raise TargetUnreachable(
            f"{url}: HTTP {e.status} {e.message or ''}".rstrip()
            + ": the server refused the WebSocket upgrade (is this the agent's WebSocket path?)") from None
    except (aiohttp.ClientConnectorError, aiohttp.ClientOSError, OSError) as e:
        await session.close()
        reason = getattr(e, "os_error", None) or e
        raise TargetUnreachable(f"{url}: cannot connect ({getattr(reason, 'strerror', None) or reason}); "
                                "is the agent running?") from None
    except (aiohttp.ClientError, TimeoutError) as e:
        await session.close()
        raise TargetUnreachable(f"{url}: {type(e).__name__}: {e or 'timed out'}") from None
    conn = ws._response.connection
    return session, ws, stamping.install(conn.transport if conn is not None else None)
