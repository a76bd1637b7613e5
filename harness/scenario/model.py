"""What a scenario file may say: defaults and a list of caller steps."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Pick(_Strict):
    """Choose a fixture per call (seeded), among those of a kind and optionally a voice."""

    pick: Literal["utterance", "paused", "interruption", "backchannel", "filler"]
    voice: str | None = None


FixtureSel = str | Pick


class SayStep(_Strict):
    """Speak a fixture now (silence keeps flowing before and after it, like a live microphone)."""

    say: FixtureSel


class _Timed(_Strict):
    fixture: FixtureSel
    after_ms: float = Field(800.0, ge=0, le=60_000, description="delay after the agent becomes audible")
    timeout_s: float = Field(8.0, gt=0, le=600, description="how long to wait for the agent to start talking")


class BargeIn(_Timed):
    pass


class Backchannel(_Timed):
    after_ms: float = Field(1000.0, ge=0, le=60_000)


class BargeInStep(_Strict):
    """Interrupt the agent `after_ms` after it becomes audible."""

    barge_in: BargeIn


class BackchannelStep(_Strict):
    """Say a short "mm-hmm" `after_ms` after the agent becomes audible; it should keep talking."""

    backchannel: Backchannel


class WaitFor(_Strict):
    reply: bool = Field(False, description="first wait for the agent to start talking")
    silence_ms: float | None = Field(None, gt=0, le=60_000, description="then for this much agent silence")
    ms: float | None = Field(None, ge=0, le=600_000, description="or simply wait this long")
    timeout_s: float = Field(10.0, gt=0, le=600)


class WaitStep(_Strict):
    """Wait for the agent's reply to end (`wait: reply`), for silence, or for a fixed time."""

    wait: Literal["reply", "silence"] | WaitFor

    @field_validator("wait", mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return {"ms": v}
        return v


def _step_kind(v: Any) -> str | None:
    if isinstance(v, dict) and len(v) == 1:
        return next(iter(v))
    if isinstance(v, BaseModel):
        return next(iter(type(v).model_fields))
    return None


Step = Annotated[
    Annotated[SayStep, Tag("say")] | Annotated[WaitStep, Tag("wait")] | Annotated[BargeInStep, Tag("barge_in")]
    | Annotated[BackchannelStep, Tag("backchannel")],
    Discriminator(_step_kind, custom_error_type="step",
                  custom_error_message="a step is one of say, wait, barge_in, backchannel (one key per step)"),
]


class Defaults(_Strict):
    """Run settings a scenario can fix; command-line options override them."""

    target: str = Field("reference", description="'reference' (started in the background), 'oracle' or a ws:// URL")
    transport: str = Field("ws-pcm", description="a registered transport: ws-pcm, twilio, webrtc, …")
    calls: int = Field(1, ge=1, le=10_000_000)
    concurrency: int = Field(1, ge=1, le=10_000)
    seed: int = 0
    response_timeout_s: float = Field(8.0, gt=0, le=600, description="no audible reply by then = no_response")
    reply_silence_ms: float = Field(700.0, gt=0, le=60_000, description="agent silence that ends `wait: reply`")
    barge_in_threshold_ms: float = Field(500.0, gt=0, le=60_000)
    thresholds: list[str] = Field(default_factory=list)
    agent_args: str = Field("", description="options for the reference agent when this scenario starts it "
                                            "(before any --agent-args), e.g. '--tools on'")

    @field_validator("transport")
    @classmethod
    def _known_transport(cls, v: str) -> str:
        from harness.transports.registry import transport_names
        if v not in transport_names():
            raise ValueError(f"unknown transport {v!r}; expected one of: {', '.join(transport_names())}")
        return v


class Scenario(_Strict):
    """A scripted caller: what it says, when, and the defaults of a run."""

    version: Literal[1]
    name: str
    description: str = ""
    defaults: Defaults = Field(default_factory=Defaults)
    steps: list[Step] = Field(min_length=1)
