"""What a transport hands the caller: agent audio, agent events, playout clears, each stamped on arrival."""

from __future__ import annotations

from dataclasses import dataclass

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


Received = AudioReceived | EventReceived | PlayoutCleared
