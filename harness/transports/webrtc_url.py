"""WebRTC signalling URLs, checked without importing aiortc (usage errors come first)."""

from __future__ import annotations

from yarl import URL


def check_http_url(url: str) -> URL:
    """Parse an http(s):// signalling URL, or raise ValueError saying what is wrong."""
    try:
        u = URL(url)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{url!r}: not a URL ({e})") from None
    if u.scheme not in ("http", "https") or not u.host:
        raise ValueError(f"{url!r}: expected http://HOST:PORT/PATH (the agent's WebRTC offer or WHIP endpoint)")
    return u
