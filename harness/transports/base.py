"""The one interface every transport implements, and what it hands back to the caller."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import AsyncIterator, Callable, Union

import numpy as np


@dataclass(frozen=True)
class AudioReceived:
    """Agent audio (16 kHz mono int16) and when its message arrived at the caller."""

    arrival_ns: int
    samples: np.ndarray


@dataclass(frozen=True)
class EventReceived:
    """A JSON event the agent sent (its own trace), stamped on arrival."""

    arrival_ns: int
    event: dict


@dataclass(frozen=True)
class PlayoutCleared:
    """The agent asked the caller to drop audio it has not played yet (Twilio `clear`)."""

    arrival_ns: int


Received = Union[AudioReceived, EventReceived, PlayoutCleared]


class TargetUnreachable(ConnectionError):
    """The target could not be reached or does not speak the protocol (exit code 3)."""


class TargetProtocolError(ValueError):
    """The target sent something the protocol does not allow (recorded on the call, run goes on)."""


class Transport(abc.ABC):
    """A connection to one agent for one call: 20 ms PCM16 frames out, audio and events in."""

    name: str = "?"

    @abc.abstractmethod
    async def connect(self) -> None:
        """Open the call; raise `TargetUnreachable` with the URL and what went wrong."""

    @abc.abstractmethod
    async def send_audio(self, pcm16: bytes) -> int | None:
        """Send one frame of caller audio (16 kHz mono PCM16LE). Transports that encode return
        the moment the encoded frame went to the socket (the caller's send time for it)."""

    @abc.abstractmethod
    async def send_event(self, event: dict) -> None:
        """Send a JSON side-channel message (used for oracle hints only)."""

    @abc.abstractmethod
    def received(self) -> AsyncIterator[Received]:
        """Everything the agent sends, in arrival order, until the call ends."""

    async def pump(self, on_item: Callable[[Received], None]) -> None:
        """Hand everything the agent sends to `on_item`, in arrival order, until the call ends.
        Transports that parse in the socket's callback override this to call `on_item` there."""
        async for item in self.received():
            on_item(item)

    @abc.abstractmethod
    async def close(self) -> None:
        """Hang up; safe to call twice."""

    @property
    def protocol_errors(self) -> list[str]:
        """Malformed things the target sent during the call (the call goes on)."""
        return getattr(self, "_protocol_errors", [])
