"""What one call sent and received, with every time from `perf_counter_ns()`."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

import numpy as np

from harness.audio.frames import FRAME_NS, FRAME_SAMPLES
from harness.records.impairment import ImpairmentLog
from harness.records.received import AudioReceived, EventReceived, PlayoutCleared


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


_PCM = np.dtype("<i2")


@dataclass
class CallTimeline:
    """Everything measured in one call; metrics are computed from this alone."""

    call_id: str
    t0_ns: int = 0
    send_ns: array = field(default_factory=lambda: array("q"))
    """Actual send time of frame n (covering stream samples [n·320, (n+1)·320))."""
    turns: list[PlannedTurn] = field(default_factory=list)
    audio_arrival_ns: array = field(default_factory=lambda: array("q"))
    audio_len: array = field(default_factory=lambda: array("i"))
    audio_pcm: bytearray = field(default_factory=bytearray)
    """Received audio, packed as it arrives: cheap to append, and to hand to another process."""
    events: list[EventReceived] = field(default_factory=list)
    clears: list[PlayoutCleared] = field(default_factory=list)
    ended_ns: int | None = None
    error: str | None = None
    protocol_errors: list[str] = field(default_factory=list)
    impairment: ImpairmentLog | None = None
    """The network impairment's per-packet log (`ImpairmentLog`), when one was applied."""
    setup_ms: float | None = None
    """Connection setup the transport reports (WebRTC: offer → connection established), kept out of turns."""

    def add_audio(self, item: AudioReceived) -> None:
        self.audio_arrival_ns.append(item.arrival_ns)
        self.audio_len.append(len(item.samples))
        s = item.samples
        self.audio_pcm += memoryview(s if s.dtype == _PCM and s.flags.c_contiguous else np.ascontiguousarray(s, dtype=_PCM))

    @property
    def audio(self) -> list[AudioReceived]:
        """The received chunks, in arrival order (unpacked on demand)."""
        pcm = np.frombuffer(bytes(self.audio_pcm), dtype="<i2")
        ends = np.cumsum(np.asarray(self.audio_len, dtype=np.int64))
        starts = ends - np.asarray(self.audio_len, dtype=np.int64)
        return [AudioReceived(t, pcm[a:b]) for t, a, b in zip(self.audio_arrival_ns, starts, ends)]

    def sample_sent_ns(self, sample: int) -> int | None:
        """When the frame holding stream sample `sample` was sent (None if it never was)."""
        frame = sample // FRAME_SAMPLES
        return self.send_ns[frame] if frame < len(self.send_ns) else None

    def lateness_ns(self) -> list[int]:
        """How late each frame went out against the absolute schedule."""
        return [t - (self.t0_ns + n * FRAME_NS) for n, t in enumerate(self.send_ns)]
