"""Wire protocols between the caller and an agent, behind one `Transport` interface."""

from harness.transports.base import (AudioReceived, EventReceived, PlayoutCleared, Received,
                                     TargetProtocolError, TargetUnreachable, Transport)

__all__ = ["AudioReceived", "EventReceived", "PlayoutCleared", "Received", "TargetProtocolError",
           "TRANSPORTS", "TargetUnreachable", "Transport", "make_transport"]


TRANSPORTS = ("ws-pcm", "twilio", "webrtc")


def make_transport(name: str, url: str, **options) -> Transport:
    """A transport by name, imported lazily so optional protocols cost nothing when unused."""
    if name == "ws-pcm":
        from harness.transports.ws_pcm import AiohttpWsPcmTransport, WsPcmTransport
        client = options.pop("client", "lean")
        if client not in ("lean", "aiohttp"):
            raise ValueError(f"ws-pcm client {client!r}: expected lean or aiohttp")
        return (WsPcmTransport if client == "lean" else AiohttpWsPcmTransport)(url, **options)
    if name == "twilio":
        from harness.transports.twilio import TwilioTransport
        return TwilioTransport(url, **options)
    if name == "webrtc":
        from harness.transports.webrtc import WebRtcTransport
        return WebRtcTransport(url, **options)
    raise ValueError(f"unknown transport {name!r} (available: {', '.join(TRANSPORTS)})")
