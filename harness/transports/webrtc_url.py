"""WebRTC signalling URLs, checked without importing aiortc (usage errors come first)."""

from __future__ import annotations

from yarl import URL

from harness.transports.websocket import check_url


def check_http_url(url: str) -> URL:
    """Parse an http(s):// signalling URL, or raise ValueError saying what is wrong."""
    return check_url(url, ("http", "https"), "expected http://HOST:PORT/PATH (the agent's WebRTC offer or WHIP endpoint)")
