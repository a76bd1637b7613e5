"""The fixed oracle behaviours and the caller script that calibration runs."""

from __future__ import annotations

from dataclasses import dataclass

from harness.agent.oracle_config import OracleConfig
from harness.scenario.model import Scenario


@dataclass(frozen=True)
class Case:
    """One programmed behaviour; `expect` says what it is meant to exercise (documentation)."""

    name: str
    oracle: OracleConfig
    expect: str
    transports: tuple[str, ...] | None = None
    """Where the behaviour applies (None: every transport)."""


def calibration_scenario() -> Scenario:
    """Plain, paused and filler turns, a barge-in and a backchannel, with fixed fixtures."""
    return Scenario.model_validate({
        "version": 1, "name": "calibration",
        "steps": [
            {"say": "utt_01_joe"}, {"wait": "reply"},
            {"say": "paused_01_800ms_slt"}, {"wait": "reply"},
            {"say": "utt_07_slt"}, {"barge_in": {"fixture": "intr_01_rms", "after_ms": 500}}, {"wait": "reply"},
            {"say": "paused_02_1200ms_joe"}, {"wait": "reply"},
            {"say": "utt_04_awb"}, {"backchannel": {"fixture": "bc_yeah_joe", "after_ms": 400}}, {"wait": "reply"},
            {"say": "paused_03_400ms_slt"}, {"wait": "reply"},
            {"say": "filler_05_joe"}, {"wait": "reply"},
        ]})


def _o(**kw) -> OracleConfig:
    return OracleConfig(**{"reply_ms": 2000, **kw})


CASES: tuple[Case, ...] = (
    Case("paced", _o(delay_ms="300"), "20 ms chunks at real time"),
    Case("noise_floor", _o(delay_ms="uniform:150:600", noise_dbfs=-50, idle_noise=True),
         "-50 dBFS white noise on every sample, streamed while idle too"),
    Case("leading_silence", _o(delay_ms="450", leading_silence_ms=300, chunk_ms=100, noise_dbfs=-60),
         "each reply's first chunk starts with 300 ms of silence"),
    Case("burst_all", _o(delay_ms="lognormal:250:600", burst=0, chunk_ms=500),
         "whole reply sent at once in 500 ms messages: it queues, and a barge-in cannot stop it"),
    Case("burst_4x", _o(delay_ms="350", burst=4, chunk_ms=100, noise_dbfs=-50, idle_noise=True),
         "sent 4x faster than real time over a noise floor"),
    Case("false_interrupts", _o(delay_ms="300", false_interrupt_pause_ms=300, barge_in_stop_ms=100),
         "answers 300 ms into every longer pause: false interruptions on every paused turn"),
    Case("slow_barge_in", _o(delay_ms="normal:400:80", barge_in_stop_ms=700, backchannel="stop"),
         "stops 700 ms after a barge-in (fails the 500 ms bar) and stops for backchannels"),
    Case("jittered", _o(delay_ms="lognormal:200:900", chunk_ms=40, barge_in_stop_ms=300, noise_dbfs=-45),
         "lognormal delays, 40 ms chunks, -45 dBFS noise"),
    Case("quiet_nothing_between", _o(delay_ms="uniform:200:700", level_dbfs=-27, fade_in_ms="50",
                                     webrtc_idle="nothing"),
         "a -27 dBFS voice fading in over 50 ms, nothing at all sent between replies (on WebRTC: no packet "
         "from the connection until the first reply, nor between replies)"),
    Case("levels", _o(delay_ms="uniform:200:700", level_cycle_dbfs=[-45, -36, -26, -16, -6], webrtc_idle="nothing"),
         "replies at -45, -36, -26, -16 and -6 dBFS RMS in turn, nothing sent between (no packets on WebRTC)"),
    Case("soft_attack", _o(delay_ms="uniform:200:700", level_dbfs=-26, fade_in_ms="uniform:30:80"),
         "every reply fades in over 30-80 ms"),
    Case("hiss", _o(delay_ms="uniform:200:700", hiss_dbfs=(-60, -45), hiss_ms=150),
         "150 ms of TTS hiss at -60...-45 dBFS before each reply's first word"),
    Case("rate_24k", _o(delay_ms="uniform:200:700", agent_rate=24000),
         "the voice made at 24 kHz and resampled to 16 kHz by the agent"),
    Case("dead_air", _o(delay_ms="uniform:200:700", reply_ms=2600, reply_gap_ms="uniform:300:600",
                        reply_gap_after_ms=1200, reply_filler=True),
         "300-600 ms of silence 1.2 s into every reply: a filler, then a wait, then the content, marked with "
         "response.content_start (the gap is shorter than the 700 ms that ends `wait: reply`)"),
    Case("stall", _o(delay_ms="uniform:250:700", noise_dbfs=-50, idle_noise=True, stall_before_reply_ms=120),
         "a -50 dBFS floor streamed while idle, whose last 120 ms before each reply arrive at once, late",
         transports=("ws-pcm", "twilio", "openai-realtime")),
    Case("rate_8k", _o(delay_ms="uniform:200:700", agent_rate=8000, fade_in_ms="40"),
         "the voice made at 8 kHz (telephone band) and resampled to 16 kHz, with a 40 ms fade-in"),
)

QUICK_CASES = ("paced", "noise_floor", "burst_all", "false_interrupts")
