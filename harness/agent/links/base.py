"""What an agent session sees of a call: caller audio and events in, audio, events, clear out."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from harness.errors import ProtocolViolation


@dataclass(frozen=True)
class CallerAudio:
    """Caller audio as 16 kHz mono PCM16LE, stamped where its message left the socket."""

    pcm16: bytes
    arrival_ns: int


@dataclass(frozen=True)
class CallerEvent:
    """A JSON message from the caller that is not audio (a turnbench hint, a Twilio mark ack)."""

    event: dict
    arrival_ns: int


Inbound = CallerAudio | CallerEvent


class LinkRefused(ProtocolViolation):
    """The caller opened a call the link cannot serve (wrong media format, bad offer)."""


class CallLink(abc.ABC):
    """One call at the agent's end of a transport."""

    transport: str = "?"
    can_clear: bool = False
    """True where the caller keeps a playout buffer the agent can empty (Twilio `clear`)."""

    def __init__(self, call_id: str):
        self.call_id = call_id

    @abc.abstractmethod
    def inbound(self) -> AsyncIterator[Inbound]:
        """Everything the caller sends, in order, until it hangs up."""

    async def pump(self, on_item: Callable[[Inbound], None]) -> None:
        """Hand everything the caller sends to `on_item`, in order, until it hangs up. Links that
        parse on the socket's callback override this to call `on_item` there (no task hop)."""
        async for item in self.inbound():
            on_item(item)

    @abc.abstractmethod
    async def send_audio(self, pcm16: bytes) -> int | None:
        """Agent audio, 16 kHz mono PCM16LE, any length; one call is one message on the wire.
        Returns when the encoded message was handed to the socket (None: not known)."""

    @abc.abstractmethod
    async def send_event(self, event: dict) -> None:
        """The agent's own trace event (JSON), where the transport has a side channel."""

    async def clear(self) -> None:
        """Drop the audio the caller has queued but not played (no-op where there is none)."""

    @abc.abstractmethod
    async def hang_up(self, code: int = 1000, reason: str = "") -> None:
        """End the call from the agent's side."""


class Endpoint:
    """One transport's side of the agent server: routes (and front-door upgrades) that turn the
    protocol into `CallLink`s handed to `server.serve_link`. Registered per transport
    (`TransportEntry.agent_endpoint`), constructed with the server."""

    def __init__(self, server) -> None:
        self.server = server

    def mount(self, app) -> None:
        """Add this transport's routes to the aiohttp application."""

    def upgrades(self) -> dict:
        """Paths whose WebSocket upgrades the front door hands to this endpoint (lean framing)."""
        return {}

    def health(self) -> dict:
        """What /health says of this transport beyond its name."""
        return {}

    async def close(self) -> None:
        """End every call this endpoint still serves."""
