"""One call: stream a scenario into a transport in real time and record the timeline."""

from __future__ import annotations

import asyncio
import math
import random
import time
from dataclasses import dataclass

from harness.audio.fixtures import Fixture, FixtureLibrary
from harness.audio.frames import FRAME_NS, FRAME_SAMPLES, SAMPLE_RATE
from harness.caller.listener import Listener, ear
from harness.caller.metronome import Metronome
from harness.caller.mic import Microphone
from harness.caller.pacing import loop_local
from harness.clock import sleep_until
from harness.records.received import AudioReceived, EventReceived, PlayoutCleared
from harness.records.timeline import CallTimeline, PlannedTurn
from harness.scenario.model import BackchannelStep, BargeInStep, Pick, SayStep, Scenario, WaitFor, WaitStep
from harness.transports.base import TargetProtocolError, TargetUnreachable, Transport

SAY_KINDS = {"utterance": "utterance", "paused": "paused", "filler": "filler"}


@dataclass(frozen=True)
class CallSettings:
    """Per-run knobs a call needs beyond the scenario's steps."""

    response_timeout_s: float = 8.0
    reply_silence_ms: float = 700.0
    hints: bool = False
    """Send `turnbench.hint` events (only the oracle agent understands them)."""
    seed: int = 0
    start_delay_ms: float = 40.0
    pacing: str = "shared"
    """`shared`: one metronome for all calls of the process; `per-call`: a timer per call (the
    straightforward layout, kept for `turnbench bench capacity` to compare against)."""


@dataclass(frozen=True)
class TurnPlan:
    """A scenario step that speaks, resolved to a fixture for one call."""

    index: int
    kind: str
    fixture: Fixture
    step: SayStep | BargeInStep | BackchannelStep


def plan_turns(scenario: Scenario, fixtures: FixtureLibrary, call_index: int, seed: int) -> list[TurnPlan]:
    """Which fixture each speaking step uses in this call (seeded picks, so calls repeat)."""
    rng = random.Random(f"{seed}:{call_index}")
    plans = []
    for step in scenario.steps:
        if isinstance(step, SayStep):
            fx = _resolve(step.say, fixtures, rng)
            kind = SAY_KINDS.get(fx.kind, "utterance")
        elif isinstance(step, BargeInStep):
            fx, kind = _resolve(step.barge_in.fixture, fixtures, rng), "barge_in"
        elif isinstance(step, BackchannelStep):
            fx, kind = _resolve(step.backchannel.fixture, fixtures, rng), "backchannel"
        else:
            continue
        plans.append(TurnPlan(len(plans), kind, fx, step))
    return plans


def _resolve(sel: str | Pick, fixtures: FixtureLibrary, rng: random.Random) -> Fixture:
    if isinstance(sel, Pick):
        return rng.choice(fixtures.select(sel.pick, sel.voice))
    return fixtures[sel]


_METRONOMES: dict[asyncio.AbstractEventLoop, Metronome] = {}


def metronome() -> Metronome:
    """The running loop's shared metronome."""
    return loop_local(_METRONOMES, lambda loop: Metronome())


class Call:
    """Runs one scripted call; `timeline` holds the record even if the call fails or is cancelled."""

    def __init__(self, transport: Transport, scenario: Scenario, plans: list[TurnPlan],
                 call_id: str, settings: CallSettings):
        self.transport, self.scenario, self.plans = transport, scenario, plans
        self.settings = settings
        self.timeline = CallTimeline(call_id)
        self.mic = Microphone()
        self.listener = Listener()

    async def run(self) -> CallTimeline:
        """Connect, stream, hang up. `TargetUnreachable` propagates; other failures land in the timeline."""
        await self.transport.connect()
        tl = self.timeline
        tl.setup_ms = self.transport.setup_ms
        tl.impairment = self.transport.log
        tl.t0_ns = time.perf_counter_ns() + int(self.settings.start_delay_ms * 1e6)
        slot = None
        if self.settings.pacing == "shared":
            slot, tl.t0_ns = metronome().place(tl.t0_ns)
        try:
            async with asyncio.TaskGroup() as tg:
                sender = tg.create_task(self._send_loop() if self.settings.pacing == "per-call"
                                        else metronome().pace(self, slot))
                receiver = tg.create_task(self._receive_loop())
                script = tg.create_task(self._script())
                await asyncio.wait([script, receiver], return_when=asyncio.FIRST_COMPLETED)
                if receiver.done() and not script.done():
                    refusal = self.transport.refusal
                    tl.error = tl.error or (f"refused: {refusal}" if refusal else
                                            f"target closed the connection {self._elapsed_s():.1f} s into the call")
                    script.cancel()
                sender.cancel()
                await self.transport.close()
                receiver.cancel()
        except* TargetProtocolError as eg:
            tl.error = tl.error or f"protocol error: {eg.exceptions[0]}"
        except* (ConnectionError, OSError) as eg:
            tl.error = tl.error or f"connection lost: {eg.exceptions[0]}"
        finally:
            if slot is not None:
                metronome().release(slot)
            await self.transport.close()
            tl.ended_ns = time.perf_counter_ns()
            tl.protocol_errors = list(self.transport.protocol_errors)
        return tl

    def _elapsed_s(self) -> float:
        return (time.perf_counter_ns() - self.timeline.t0_ns) / 1e9

    # -- the three tasks ---------------------------------------------------------------------

    async def _send_loop(self) -> None:
        tl, n = self.timeline, 0
        while True:
            await sleep_until(tl.t0_ns + n * FRAME_NS)
            await self._send_frame(n)
            n += 1

    async def _send_frame(self, n: int) -> None:
        pcm = self.mic.frame_bytes(n)
        sent = time.perf_counter_ns()
        sent = await self.transport.send_audio(pcm) or sent
        self.timeline.send_ns.append(sent)
        self.mic.mark_sent(n)

    async def send_due(self, now_ns: int) -> None:
        """Metronome tick: send every frame whose time has come (more than one only after a stall)."""
        tl = self.timeline
        n = len(tl.send_ns)
        while tl.t0_ns + n * FRAME_NS <= now_ns:
            await self._send_frame(n)
            n += 1

    async def _receive_loop(self) -> None:
        self._ear = ear()
        await self.transport.pump(self._on_received)

    def _on_received(self, item) -> None:
        """Called from the socket's read callback (ws-pcm): records the item, and leaves the
        listener's level work to the loop's `Ear` (just after the reads, all calls' chunks in one
        pass), so that work does not delay the reads, and the arrival stamps, of the other calls
        whose messages wait in the same loop pass."""
        tl = self.timeline
        if isinstance(item, AudioReceived):
            tl.add_audio(item)
            self._ear.feed(self.listener, item.arrival_ns, item.samples)
        elif isinstance(item, EventReceived):
            tl.events.append(item)
            if item.event.get("type") == "error" and not tl.error:  # the agent says why it gives up
                tl.error = f"agent error: {item.event.get('message', '?')}"
        elif isinstance(item, PlayoutCleared):
            tl.clears.append(item)
            self._ear.clear(self.listener, item.arrival_ns)  # in order with the audio before it

    async def _script(self) -> None:
        plans = iter(self.plans)
        last_eos_ns = self.timeline.t0_ns
        steps = self.scenario.steps
        for step in steps:
            if isinstance(step, WaitStep):
                await self._wait(step.wait, last_eos_ns)
                continue
            plan = next(plans)
            earliest = None
            if isinstance(step, (BargeInStep, BackchannelStep)):
                timed = step.barge_in if isinstance(step, BargeInStep) else step.backchannel
                onset = await self.listener.wait_onset(
                    last_eos_ns, time.perf_counter_ns() + int(timed.timeout_s * 1e9))
                earliest = self._sample_for(onset + int(timed.after_ms * 1e6), plan.fixture) if onset else None
                turn = await self._speak(plan, earliest, onset)
            else:
                turn = await self._speak(plan, None, None)
            last_eos_ns = self.timeline.sample_sent_ns(turn.eos_sample) or time.perf_counter_ns()
        if not steps or not isinstance(steps[-1], WaitStep):
            await self._wait("reply", last_eos_ns)

    # -- script helpers ----------------------------------------------------------------------

    def _sample_for(self, target_ns: int, fixture: Fixture) -> int:
        """Clip start that puts the fixture's first speech sample in the frame sent at `target_ns`."""
        frame = max(0, math.ceil((target_ns - self.timeline.t0_ns) / FRAME_NS))
        return frame * FRAME_SAMPLES - round(fixture.speech_start_s * SAMPLE_RATE)

    async def _speak(self, plan: TurnPlan, earliest: int | None, onset_ns: int | None) -> PlannedTurn:
        fx = plan.fixture
        start, done = self.mic.schedule(fx.samples, earliest)
        segs = [(start + round(a * SAMPLE_RATE), start + round(b * SAMPLE_RATE) - 1) for a, b in fx.segments]
        turn = PlannedTurn(plan.index, plan.kind, fx.id, fx.text, start, segs, onset_ns)
        self.timeline.turns.append(turn)
        if self.settings.hints:
            await self.transport.send_event({**turn.hint(), "call_id": self.timeline.call_id})
        await done.wait()
        await self.transport.caller_turn_ended(plan.kind)
        return turn

    async def _wait(self, what: str | WaitFor, last_eos_ns: int) -> None:
        s, now = self.settings, time.perf_counter_ns()
        if what == "silence":
            what = WaitFor(silence_ms=s.reply_silence_ms)
        if what == "reply":
            what = WaitFor(reply=True, silence_ms=s.reply_silence_ms, timeout_s=60.0)
        if what.ms is not None:
            await asyncio.sleep(what.ms / 1000)
            return
        deadline = now + int(what.timeout_s * 1e9)
        since = now
        if what.reply:
            onset = await self.listener.wait_onset(last_eos_ns, max(now, last_eos_ns) + int(s.response_timeout_s * 1e9))
            if onset is None:
                return
            since = onset
            deadline = max(deadline, onset + int(what.timeout_s * 1e9))
        await self.listener.wait_silence(since, int((what.silence_ms or s.reply_silence_ms) * 1e6), deadline)


async def run_call(transport: Transport, scenario: Scenario, plans: list[TurnPlan], call_id: str,
                   settings: CallSettings) -> CallTimeline:
    """Convenience wrapper: run one call and return its timeline."""
    return await Call(transport, scenario, plans, call_id, settings).run()


__all__ = ["Call", "CallSettings", "TargetUnreachable", "TurnPlan", "plan_turns", "run_call"]
