"""WebSocket URLs checked up front, with errors that say what is wrong with them."""

from __future__ import annotations

from yarl import URL


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
