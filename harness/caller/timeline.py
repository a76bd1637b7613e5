"""What one call sent and received, with every time from `perf_counter_ns()`."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

from harness.audio.frames import FRAME_NS, FRAME_SAMPLES
from harness.transports.base import AudioReceived, EventReceived, PlayoutCleared


@dataclass
class PlannedTurn:
    """A caller turn placed on the send stream (all positions in stream samples)."""

    index: int
    kind: str
    fixture: str
    text: str
    clip_start: int
    segments: list[tuple[int, int]]
    """Speech segments as [first, last] stream sample indices."""
    agent_onset_ns: int | None = None
    """For barge-ins and backchannels: the agent onset the step was timed from."""

    @property
    def first_speech_sample(self) -> int:
        return self.segments[0][0]

    @property
    def eos_sample(self) -> int:
        return self.segments[-1][1]

    def hint(self) -> dict:
        """The oracle's side-channel message about this turn."""
        return {"type": "turnbench.hint", "turn": self.index, "kind": self.kind, "fixture": self.fixture,
                "segments": [list(s) for s in self.segments]}


@dataclass
class CallTimeline:
    """Everything measured in one call; metrics are computed from this alone."""

    call_id: str
    t0_ns: int = 0
    send_ns: array = field(default_factory=lambda: array("q"))
    """Actual send time of frame n (covering stream samples [n·320, (n+1)·320))."""
    turns: list[PlannedTurn] = field(default_factory=list)
    audio: list[AudioReceived] = field(default_factory=list)
    events: list[EventReceived] = field(default_factory=list)
    clears: list[PlayoutCleared] = field(default_factory=list)
    ended_ns: int | None = None
    error: str | None = None
    protocol_errors: list[str] = field(default_factory=list)

    def sample_sent_ns(self, sample: int) -> int | None:
        """When the frame holding stream sample `sample` was sent (None if it never was)."""
        frame = sample // FRAME_SAMPLES
        return self.send_ns[frame] if frame < len(self.send_ns) else None

    def lateness_ns(self) -> list[int]:
        """How late each frame went out against the absolute schedule."""
        return [t - (self.t0_ns + n * FRAME_NS) for n, t in enumerate(self.send_ns)]
