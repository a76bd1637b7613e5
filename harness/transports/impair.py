"""Network impairment on the caller's side of any transport: delay, jitter, loss, both ways.

Frames the caller sends and chunks it receives pass through a seeded model of a network path:
a one-way delay, per-packet jitter (order kept unless `reorder`), random or bursty loss (a lost
packet becomes silence of the same length, as a receiver's concealment would), and for `pstn`
the 8 kHz mu-law codec. The caller's own clock is untouched: EOS is still when the caller's
"microphone" sent the frame, so every added millisecond shows up in the measured latency, and
what was added to each packet is recorded so calibration can account for it exactly.
"""

from __future__ import annotations

import asyncio
import heapq
import random
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, replace

import numpy as np

from harness.playout import CatchUp
from harness.records.impairment import ImpairmentLog
from harness.records.received import AudioReceived, PlayoutCleared, Received
from harness.transports.base import Transport


@dataclass(frozen=True)
class ImpairmentProfile:
    """One direction's path, applied to both directions."""

    name: str = "custom"
    delay_ms: float = 0.0
    """One-way delay added to every packet."""
    jitter_ms: float = 0.0
    """Standard deviation of a per-packet extra delay (normal, never below -delay)."""
    loss: float = 0.0
    """Share of packets lost (0–1)."""
    burst: float = 1.0
    """Mean length of a loss burst in packets (1 = independent losses; Gilbert-Elliott above)."""
    reorder: bool = False
    """Let a jittered packet overtake an earlier one (off: order is kept, as on most paths)."""
    mulaw: bool = False
    """Carry the audio as 8 kHz mu-law (a telephone leg)."""

    def describe(self) -> str:
        parts = [f"{self.delay_ms:g} ms delay"]
        if self.jitter_ms:
            parts.append(f"{self.jitter_ms:g} ms jitter")
        if self.loss:
            parts.append(f"{self.loss * 100:g} % loss" + (f" in bursts of {self.burst:g}" if self.burst > 1 else ""))
        if self.mulaw:
            parts.append("8 kHz mu-law")
        return f"{self.name} ({', '.join(parts)} each way)"

    def to_json(self) -> dict:
        return {**asdict(self), "description": self.describe()}


PROFILES: dict[str, ImpairmentProfile] = {
    # typical published figures: a LAN hop; home Wi-Fi; a mobile data path; a carrier-routed phone leg
    "lan": ImpairmentProfile("lan", delay_ms=1.0, jitter_ms=0.3),
    "wifi": ImpairmentProfile("wifi", delay_ms=15.0, jitter_ms=5.0, loss=0.005, burst=1.5),
    "4g": ImpairmentProfile("4g", delay_ms=40.0, jitter_ms=12.0, loss=0.01, burst=2.0),
    "pstn": ImpairmentProfile("pstn", delay_ms=150.0, jitter_ms=8.0, loss=0.003, burst=1.0, mulaw=True),
}


def resolve_profile(name: str | None = None, *, delay_ms: float | None = None, jitter_ms: float | None = None,
                    loss: float | None = None, burst: float | None = None,
                    reorder: bool | None = None) -> ImpairmentProfile | None:
    """A named profile with explicit overrides, or a custom one from the overrides alone."""
    if name is None and all(v is None for v in (delay_ms, jitter_ms, loss, burst, reorder)):
        return None
    if name is not None and name not in PROFILES:
        raise ValueError(f"--impair {name!r}: unknown profile (available: {', '.join(PROFILES)})")
    base = PROFILES[name] if name is not None else ImpairmentProfile("custom")
    over = {k: v for k, v in dict(delay_ms=delay_ms, jitter_ms=jitter_ms, loss=loss, burst=burst,
                                  reorder=reorder).items()
            if v is not None}
    if over.get("loss", 0) < 0 or over.get("loss", 0) >= 1:
        raise ValueError(f"--loss {over['loss']}: expected a share between 0 and 1 (0.01 = 1 %)")
    out = replace(base, **over)
    if over and name is not None:
        out = replace(out, name=f"{name}+custom")
    return out


class _Path:
    """One direction: when each packet comes out, and whether it is lost (seeded)."""

    def __init__(self, p: ImpairmentProfile, rng: random.Random):
        self.p, self.rng = p, rng
        self._last_ns = 0
        self._bad = False
        b = max(1.0, p.burst)
        self._leave_bad = 1.0 / b
        self._enter_bad = p.loss / (b * (1.0 - p.loss)) if p.loss < 1 else 1.0

    def lost(self) -> bool:
        if self.p.loss <= 0:
            return False
        if self.p.burst <= 1:
            return self.rng.random() < self.p.loss
        self._bad = (self.rng.random() >= self._leave_bad) if self._bad else (self.rng.random() < self._enter_bad)
        return self._bad

    def release_ns(self, now_ns: int) -> int:
        extra = self.rng.gauss(0.0, self.p.jitter_ms) if self.p.jitter_ms else 0.0
        t = now_ns + int(max(0.0, self.p.delay_ms + extra) * 1e6)
        if not self.p.reorder:
            t = max(t, self._last_ns)
        self._last_ns = max(self._last_ns, t)
        return t


class ImpairedTransport(Transport):
    """Wraps a transport; frames go out late (or as silence), chunks come in late (or silent)."""

    def __init__(self, inner: Transport, profile: ImpairmentProfile, seed: str | int = 0):
        self.inner, self.profile = inner, profile
        self.name = inner.name
        self._up = _Path(profile, random.Random(f"{seed}:up"))
        self._down = _Path(profile, random.Random(f"{seed}:down"))
        self.log = ImpairmentLog()
        self._outbox: list[tuple[int, int, bytes, int, int]] = []
        self._inbox: list[tuple[int, int, Received, int, bool]] = []
        self._out_wake = asyncio.Event()
        self._in_wake = asyncio.Event()
        self._order = 0
        self._ended = False
        self._tasks: list[asyncio.Task] = []
        self._catch_up = None
        if inner.continuous:
            # a receiver's jitter buffer sits after the network path, so catch-up happens here,
            # once, after the delay; the inner transport hands over every frame as decoded
            self._catch_up = CatchUp()
            inner.catch_up = None
        self._codec_up = self._codec_down = None
        if profile.mulaw and inner.name != "twilio":  # Twilio already is mu-law
            from harness.transports.twilio_protocol import MulawDecoder, MulawEncoder
            self._codec_up = (MulawEncoder(), MulawDecoder())
            self._codec_down = (MulawEncoder(), MulawDecoder())

    @property
    def protocol_errors(self) -> list[str]:
        return self.inner.protocol_errors

    @property
    def continuous(self) -> bool:
        return self.inner.continuous

    @property
    def setup_ms(self) -> float | None:
        return self.inner.setup_ms

    @property
    def refusal(self) -> str | None:
        return self.inner.refusal

    def __getattr__(self, name: str):  # other transport facts (marks_acked, …) pass through
        return getattr(self.inner, name)

    async def connect(self) -> None:
        await self.inner.connect()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._sender()), loop.create_task(self._pump())]

    @staticmethod
    def _through(codec, pcm16: bytes, at_ns: int | None = None) -> bytes:
        enc, dec = codec
        return dec.decode(enc.encode(pcm16, at_ns), at_ns).tobytes()

    async def send_audio(self, pcm16: bytes) -> int:
        now = time.perf_counter_ns()
        lost = self._up.lost()
        if lost:
            pcm16 = bytes(len(pcm16))
        elif self._codec_up is not None:
            pcm16 = self._through(self._codec_up, pcm16)
        release = self._up.release_ns(now)
        self.log.up_added_ns.append(release - now)
        self.log.up_lost.append(lost)
        self._order += 1
        heapq.heappush(self._outbox, (release, self._order, pcm16, len(self.log.up_added_ns) - 1, now))
        self._out_wake.set()
        return now

    async def _sender(self) -> None:
        while True:
            if not self._outbox:
                self._out_wake.clear()
                await self._out_wake.wait()
                continue
            due = self._outbox[0][0]
            delay = (due - time.perf_counter_ns()) / 1e9
            if delay > 0:
                self._out_wake.clear()
                try:
                    await asyncio.wait_for(self._out_wake.wait(), delay)
                except TimeoutError:
                    pass
                continue
            _, _, pcm16, index, entered = heapq.heappop(self._outbox)
            sent = await self.inner.send_audio(pcm16) or time.perf_counter_ns()
            self.log.up_added_ns[index] = sent - entered  # what it really was, wake-up lateness included

    async def send_event(self, event: dict) -> None:
        await self.inner.send_event(event)  # the oracle's side channel is not part of the path

    async def caller_turn_ended(self, kind: str) -> None:
        await self.inner.caller_turn_ended(kind)

    async def _pump(self) -> None:
        """Take everything off the inner transport at once (its arrival stamps stay exact)."""
        try:
            async for item in self.inner.received():
                self._order += 1
                release = self._down.release_ns(item.arrival_ns)
                lost = isinstance(item, AudioReceived) and self._down.lost()
                heapq.heappush(self._inbox, (release, self._order, item, release - item.arrival_ns, lost))
                self._in_wake.set()
        finally:
            self._ended = True
            self._in_wake.set()

    async def received(self) -> AsyncIterator[Received]:
        while True:
            if not self._inbox:
                if self._ended:
                    return
                self._in_wake.clear()
                await self._in_wake.wait()
                continue
            due, _, item, added, lost = self._inbox[0]
            delay = (due - time.perf_counter_ns()) / 1e9
            if delay > 0:
                self._in_wake.clear()
                try:
                    await asyncio.wait_for(self._in_wake.wait(), delay)
                except TimeoutError:
                    pass
                continue
            heapq.heappop(self._inbox)
            if isinstance(item, AudioReceived):
                samples = item.samples
                log = self.log
                log.inner_arrival_ns.append(item.arrival_ns)
                log.inner_len.append(len(samples))
                if self._catch_up is not None:
                    log.inner_pcm += memoryview(np.ascontiguousarray(samples, dtype="<i2"))
                if lost:
                    samples = np.zeros_like(samples)
                elif self._codec_down is not None:
                    samples = np.frombuffer(self._through(self._codec_down, samples.tobytes(), due), dtype="<i2")
                if self._catch_up is not None:  # a continuous stream recovers from late packets
                    n = len(samples)
                    samples = self._catch_up.admit(due, samples)
                    log.inner_trimmed.append(n - len(samples))
                    if not len(samples):
                        log.inner_kept.append(-1)
                        continue
                else:
                    log.inner_trimmed.append(0)
                log.inner_kept.append(len(log.down_added_ns))
                log.down_added_ns.append(added)
                log.down_lost.append(lost)
                item = AudioReceived(due, samples)
            else:
                if isinstance(item, PlayoutCleared):
                    self.log.clear_added_ns.append(added)
                item = type(item)(due, *[getattr(item, f) for f in item.__dataclass_fields__ if f != "arrival_ns"])
            yield item

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await self.inner.close()
