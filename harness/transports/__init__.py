"""Wire protocols between the caller and an agent, behind one `Transport` interface."""

from harness.transports.base import (AudioReceived, EventReceived, PlayoutCleared, Received,
                                     TargetProtocolError, TargetUnreachable, Transport)

__all__ = ["AudioReceived", "EventReceived", "PlayoutCleared", "Received", "TargetProtocolError",
           "TargetUnreachable", "Transport", "make_transport"]


def make_transport(name: str, url: str, **options) -> Transport:
    """A transport by name, imported lazily so optional protocols cost nothing when unused."""
    if name == "ws-pcm":
        from harness.transports.ws_pcm import WsPcmTransport
        return WsPcmTransport(url, **options)
    raise ValueError(f"unknown transport {name!r} (available: ws-pcm)")
