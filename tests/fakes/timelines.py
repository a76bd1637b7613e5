"""FakeTimeline: hand-built call timelines, for testing the metric definitions exactly."""

from __future__ import annotations

import numpy as np

from harness.agent.oracle_voice import synth_reply, white_noise
from harness.audio.frames import FRAME_NS, FRAME_SAMPLES, SAMPLE_RATE, float_to_pcm16
from harness.records.received import AudioReceived, EventReceived
from harness.records.timeline import CallTimeline, PlannedTurn

MS = 1_000_000


class FakeTimeline:
    """Build a CallTimeline: frames sent exactly on schedule from t0 = 0, turns and agent audio by ms."""

    def __init__(self, duration_ms: float = 20_000, noise_dbfs: float | None = None, seed: int = 0):
        self.tl = CallTimeline("fake")
        self.tl.t0_ns = 0
        n = int(duration_ms / 20) + 1
        self.tl.send_ns.extend(i * FRAME_NS for i in range(n))
        self.rng = np.random.default_rng(seed)
        self.noise_dbfs = noise_dbfs
        self.tl.ended_ns = n * FRAME_NS

    def turn(self, kind: str, segments_ms: list[tuple[float, float]], fixture: str = "fx", text: str = "") -> PlannedTurn:
        """A caller turn whose speech occupies these [start, end) ms of the stream."""
        segs = [(int(a * SAMPLE_RATE / 1000), int(b * SAMPLE_RATE / 1000) - 1) for a, b in segments_ms]
        t = PlannedTurn(len(self.tl.turns), kind, fixture, text, segs[0][0], segs)
        self.tl.turns.append(t)
        return t

    def eos_ns(self, turn: PlannedTurn) -> int:
        return self.tl.sample_sent_ns(turn.eos_sample)

    def start_ns(self, turn: PlannedTurn) -> int:
        return self.tl.sample_sent_ns(turn.first_speech_sample)

    def agent(self, at_ns: int, duration_ms: float, chunk_ms: float = 20, lead_ms: float = 0,
              burst: bool = False, level_dbfs: float = -20.0, fade_ms: float = 0.0,
              hiss_dbfs: float | None = None) -> np.ndarray:
        """Agent audio whose first voice sample is heard at `at_ns + lead_ms` (chunks paced or burst);
        optionally faded in over `fade_ms`, with hiss at `hiss_dbfs` over the lead."""
        voice = synth_reply(duration_ms, self.rng, level_dbfs)
        fade = int(fade_ms * SAMPLE_RATE / 1000)
        voice[:fade] *= np.arange(1, fade + 1, dtype=np.float32) / fade
        lead = np.zeros(int(lead_ms * SAMPLE_RATE / 1000), np.float32)
        if hiss_dbfs is not None:
            lead = white_noise(len(lead), hiss_dbfs, self.rng)
        audio = np.concatenate([lead, voice])
        if self.noise_dbfs is not None:
            audio = audio + white_noise(len(audio), self.noise_dbfs, self.rng)
        step = int(chunk_ms * SAMPLE_RATE / 1000)
        for k, a in enumerate(range(0, len(audio), step)):
            arrival = at_ns if burst else at_ns + int(k * chunk_ms * MS)
            self.tl.add_audio(AudioReceived(arrival, float_to_pcm16(audio[a : a + step])))
        return audio

    def idle(self, from_ns: int, to_ns: int, chunk_ms: float = 20) -> None:
        """Noise-only chunks in real time (an agent streaming its idle line)."""
        step = int(chunk_ms * SAMPLE_RATE / 1000)
        t = from_ns
        while t + chunk_ms * MS <= to_ns:
            noise = white_noise(step, self.noise_dbfs if self.noise_dbfs is not None else -90, self.rng)
            self.tl.add_audio(AudioReceived(int(t), float_to_pcm16(noise)))
            t += chunk_ms * MS

    def event(self, at_ns: int, **event) -> None:
        self.tl.events.append(EventReceived(at_ns, event))

    def expected(self) -> list[tuple[int, str, str]]:
        return [(t.index, t.kind, t.fixture) for t in self.tl.turns]


__all__ = ["FakeTimeline", "MS", "FRAME_SAMPLES"]
