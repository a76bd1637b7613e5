"""Turn detection by silence alone: the usual production default."""

from __future__ import annotations

from harness.agent.providers.base import TurnDetector


class SilenceTurn(TurnDetector):
    """The turn ends after `silence_ms` of silence, whatever was said."""

    name = "vad"

    def __init__(self, silence_ms: float = 600.0):
        self.silence_ms = float(silence_ms)

    def silence_needed_ms(self, transcript: str) -> float:
        return self.silence_ms
