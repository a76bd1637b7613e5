"""What the oracle agent is programmed to do (validated, with errors naming the field)."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_DELAY_MS = 600_000.0
"""Ten minutes: a delay beyond any call's length is a mistake (and `nan`/`inf` are no delay at all)."""


class Delay:
    """A response-delay distribution: `300`, `uniform:200:400`, `normal:300:40`, `lognormal:300:800`.

    `lognormal:MEDIAN:P99` is how provider latencies are usually quoted.
    """

    def __init__(self, spec: str | float):
        self.spec = str(spec)
        parts = self.spec.split(":")
        try:
            nums = [float(p) for p in parts[1:]] if len(parts) > 1 else [float(parts[0])]
        except ValueError:
            raise ValueError(f"delay {self.spec!r}: numbers expected, e.g. 300 or uniform:200:400") from None
        self.kind = parts[0] if len(parts) > 1 else "fixed"
        arity = {"fixed": 1, "uniform": 2, "normal": 2, "lognormal": 2}
        if self.kind not in arity:
            raise ValueError(f"delay {self.spec!r}: unknown distribution {self.kind!r} (fixed, uniform, normal, lognormal)")
        if len(nums) != arity[self.kind] or any(not 0 <= n <= MAX_DELAY_MS for n in nums):
            raise ValueError(f"delay {self.spec!r}: {self.kind} takes {arity[self.kind]} number(s) from 0 to "
                             f"{MAX_DELAY_MS:g} ms")
        if self.kind == "lognormal" and not 0 < nums[0] < nums[1]:
            raise ValueError(f"delay {self.spec!r}: lognormal:MEDIAN:P99 needs 0 < MEDIAN < P99")
        self.params = nums

    def draw(self, rng: np.random.Generator) -> float:
        """One delay in ms (never negative)."""
        p = self.params
        if self.kind == "fixed":
            return p[0]
        if self.kind == "uniform":
            return float(rng.uniform(min(p), max(p)))
        if self.kind == "normal":
            return max(0.0, float(rng.normal(p[0], p[1])))
        sigma = math.log(p[1] / p[0]) / 2.326348
        return float(rng.lognormal(math.log(p[0]), sigma))

    def __str__(self) -> str:
        return self.spec


class OracleConfig(BaseModel):
    """The oracle's behaviour; every time is in ms and every level in dBFS."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    delay_ms: str = Field("300", description="response delay after EOS (heard): 300, uniform:A:B, normal:M:SD, lognormal:MEDIAN:P99")
    reply_ms: float = Field(2000.0, gt=50, le=600_000, description="length of each reply")
    leading_silence_ms: float = Field(0.0, ge=0, le=60_000, description="silence at the start of each reply's first chunk")
    chunk_ms: float = Field(20.0, gt=0, le=10_000, description="audio per binary message")
    burst: float = Field(1.0, ge=0, le=1000, description="sending speed vs real time (1 = paced, 4 = 4x faster, 0 = all at once)")
    level_dbfs: float = Field(-20.0, ge=-120, le=0, description="voice level (RMS)")
    voice: Literal["synthetic", "recorded"] = Field(
        "synthetic", description="synthetic: harmonic words with sample-exact edges; recorded: the shipped "
                                 "utterance recordings in turn (real speech, for tools that need a speech VAD to hear it)")
    level_cycle_dbfs: list[float] | None = Field(
        None, min_length=1, description="reply levels in turn, repeating (overrides level_dbfs): -45,-36,-26")
    fade_in_ms: str = Field("0", description="each reply's fade-in from silence: 50, uniform:30:80 (a soft attack)")
    hiss_dbfs: tuple[float, float] | None = Field(
        None, description="TTS hiss before each reply's first word, its level drawn from this range: -60,-45")
    hiss_ms: float = Field(150.0, ge=0, le=10_000, description="how long the hiss lasts before the first word")
    agent_rate: Literal[8000, 16000, 24000, 48000] = Field(
        16000, description="the rate the agent's voice is made at; it resamples to the wire's 16 kHz itself")
    noise_dbfs: float | None = Field(None, ge=-120, le=0, description="white-noise floor added to every sample sent")
    idle_noise: bool = Field(False, description="stream the noise floor in real time while not talking")
    webrtc_idle: Literal["silence", "nothing"] = Field(
        "silence", description="WebRTC: send digital silence where nothing is queued, or no packet at all "
                               "(silent on the wire until the first reply and between replies, like DTX)")
    reply_gap_ms: str = Field("0", description="dead air inside each reply: silence this long (0, 800, uniform:300:1500) "
                                               "after the word that reaches reply_gap_after_ms, as an agent that "
                                               "says a filler and then waits on a tool call")
    reply_gap_after_ms: float = Field(400.0, ge=0, le=600_000, description="where the gap goes: after the word that "
                                                                            "reaches this much of the reply")
    reply_filler: bool = Field(False, description="with reply_gap_ms: the words before the gap are a filler (\"let me "
                                                  "check\"); the words after it are the content, marked with a "
                                                  "response.content_start event just before their first chunk")
    stall_before_reply_ms: float | None = Field(
        None, ge=20, le=2000, description="with idle_noise: withhold the noise this long before each reply, then "
                                          "send it all at once just ahead of the reply (a stall delivering it late)")
    false_interrupt_pause_ms: float | None = Field(
        None, gt=0, le=60_000, description="start replying this long into any caller pause that is longer")
    barge_in_stop_ms: float = Field(150.0, ge=0, le=60_000, description="stop this long after the caller starts talking over the oracle")
    answer_barge_in: bool = Field(True, description="answer an interruption after its end of speech")
    backchannel: Literal["ignore", "stop"] = Field("ignore", description="keep talking over backchannels, or treat them as barge-ins")
    turn_detection_ms: float = Field(100.0, ge=0, le=60_000, description="send the turn.end event this long after EOS")
    events: bool = Field(True, description="send the agent trace events (turn.end)")
    listen: bool = Field(False, description="find the caller's speech itself (no hints needed): a sample at or above "
                                            "listen_level_dbfs starts speech; the last one before listen_hangover_ms "
                                            "without any ends it")
    listen_level_dbfs: float = Field(-50.0, ge=-90, le=0, description="sample level that counts as caller speech")
    listen_hangover_ms: float = Field(500.0, ge=20, le=60_000,
                                      description="silence after the last loud sample that ends a turn")
    seed: int = 0

    @field_validator("delay_ms", "fade_in_ms", "reply_gap_ms", mode="before")
    @classmethod
    def _delay(cls, v: object) -> str:
        Delay(v)  # raises ValueError with the reason
        return str(v)

    @field_validator("agent_rate", mode="before")
    @classmethod
    def _rate(cls, v: object) -> object:
        return int(v) if isinstance(v, str) and v.strip().isdigit() else v

    @field_validator("level_cycle_dbfs", mode="before")
    @classmethod
    def _levels(cls, v: object) -> object:
        if isinstance(v, str):  # from the command line: -45,-36,-26
            v = [x for x in v.split(",") if x.strip()]
        if isinstance(v, list) and any(not -120 <= float(x) <= 0 for x in v):
            raise ValueError("levels are dBFS from -120 to 0")
        return v

    @field_validator("hiss_dbfs", mode="before")
    @classmethod
    def _hiss(cls, v: object) -> object:
        if isinstance(v, str):
            v = [x for x in v.split(",") if x.strip()]
        if isinstance(v, (list, tuple)) and len(v) == 2:
            lo, hi = sorted(float(x) for x in v)
            if not -120 <= lo <= hi <= 0:
                raise ValueError("a hiss range is two dBFS levels from -120 to 0, e.g. -60,-45")
            return (lo, hi)
        return v

    @property
    def delay(self) -> Delay:
        return Delay(self.delay_ms)

    @property
    def fade_in(self) -> Delay:
        return Delay(self.fade_in_ms)

    @property
    def reply_gap(self) -> Delay:
        return Delay(self.reply_gap_ms)


def parse_overrides(pairs: list[str]) -> dict:
    """`KEY=VALUE` strings (from the command line) to a dict pydantic can validate."""
    out: dict = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"{pair!r}: expected KEY=VALUE (e.g. delay_ms=300)")
        key = key.strip().replace("-", "_")
        if key not in OracleConfig.model_fields:
            raise ValueError(f"{key!r}: unknown oracle setting (known: {', '.join(OracleConfig.model_fields)})")
        out[key] = None if value.lower() in ("none", "null", "") else value
    return out
