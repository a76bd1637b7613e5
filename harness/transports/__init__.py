"""Wire protocols between the caller and an agent, behind one `Transport` interface, registered
by name in `registry` (the built-in ones in `builtins`)."""

from harness.transports import builtins as _builtins  # noqa: F401 (registers ws-pcm, twilio, webrtc)
from harness.transports.base import TargetProtocolError, TargetRefused, TargetUnreachable, Transport
from harness.transports.registry import make_transport, transport_entry, transport_names

__all__ = ["TargetProtocolError", "TargetRefused", "TargetUnreachable", "Transport", "make_transport", "transport_entry",
           "transport_names"]
