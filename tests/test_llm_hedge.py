"""Hedged LLM requests: the first racer to speak wins, the others are cancelled."""

import asyncio

import pytest

from harness.agent.providers.base import LLM
from harness.agent.providers.llm_hedge import HedgedLlm
from harness.agent.providers.sim import SimLlm


class FailingLlm(LLM):
    """FailingLlm (test double): fails after `after_s`."""

    name = "failing"

    def __init__(self, after_s: float = 0.0):
        self.after_s = after_s

    async def stream(self, messages):
        await asyncio.sleep(self.after_s)
        raise ConnectionError("provider down")
        yield ""  # pragma: no cover


class CountingLlm(SimLlm):
    """CountingLlm (test double): a sim LLM that records whether it was cancelled."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.cancelled = False

    async def stream(self, messages):
        try:
            async for d in super().stream(messages):
                yield d
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        except GeneratorExit:
            self.cancelled = True
            raise


async def test_first_token_wins_and_the_loser_is_cancelled():
    slow, fast = CountingLlm(ttft_ms="400"), CountingLlm(ttft_ms="20")
    hedge = HedgedLlm([slow, fast])
    text = "".join([d async for d in hedge.stream([{"role": "user", "content": "hi"}])])
    assert text.endswith(".") and hedge.wins == [0, 1]
    assert slow.cancelled and not fast.cancelled
    assert hedge.name == "sim-llm×2" and hedge.simulated


async def test_a_failing_racer_does_not_fail_the_reply_but_all_failing_does():
    hedge = HedgedLlm([FailingLlm(), SimLlm(ttft_ms="50")])
    assert "".join([d async for d in hedge.stream([])])
    with pytest.raises(ConnectionError, match="provider down"):
        [d async for d in HedgedLlm([FailingLlm(), FailingLlm(0.05)]).stream([])]


def test_a_hedge_needs_two():
    with pytest.raises(ValueError, match="two"):
        HedgedLlm([SimLlm()])
