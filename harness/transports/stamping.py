"""Arrival stamps taken where bytes leave the socket, not when a task gets round to them.

A wrapper protocol is slipped between an asyncio transport and its protocol (public API:
`transport.set_protocol`) and records `perf_counter_ns()` on every read. Stamping there,
instead of after the message has been parsed and a task resumed, removes the event loop's
queueing delay from every measured arrival.
"""

from __future__ import annotations

import asyncio
import time


class StampingProtocol(asyncio.Protocol):
    """Forwards everything to `inner`; `last_rx_ns` is the time of the latest read."""

    def __init__(self, inner: asyncio.BaseProtocol):
        self.inner = inner
        self.last_rx_ns = 0

    def data_received(self, data: bytes) -> None:
        self.last_rx_ns = time.perf_counter_ns()
        self.inner.data_received(data)

    def eof_received(self):
        return self.inner.eof_received()

    def connection_made(self, transport) -> None:
        self.inner.connection_made(transport)

    def connection_lost(self, exc) -> None:
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def install(transport: asyncio.BaseTransport | None) -> StampingProtocol | None:
    """Wrap `transport`'s protocol; returns the stamper (None when there is no plain transport)."""
    if transport is None or not hasattr(transport, "set_protocol"):
        return None
    inner = transport.get_protocol()
    if isinstance(inner, StampingProtocol):
        return inner
    if isinstance(inner, asyncio.BufferedProtocol):
        return None
    stamper = StampingProtocol(inner)
    transport.set_protocol(stamper)
    return stamper


def arrival_ns(stamper: StampingProtocol | None) -> int:
    """When the message just taken from the queue arrived (now, if reads are not stamped)."""
    now = time.perf_counter_ns()
    return min(now, stamper.last_rx_ns) if stamper is not None and stamper.last_rx_ns else now
