"""The reference agent's tools: a simulated CRM/scheduling backend, the intent router that decides
which turn needs it, and the spoken fillers that mask its latency.

Production voice agents call backends mid-conversation (look up an order, check a calendar), and
the caller hears the wait. The backend here is simulated (labelled so): what matters to the
measurement is its latency distribution (`lognormal:MEDIAN:P99`, as API latencies are quoted)
and its failures, both configurable and seeded. The router is keyword intent matching over the
transcript, as small-model agents commonly route before the LLM (SmolLM2-135M cannot emit
reliable function calls). What every call needs (the caller's profile) is fetched once when the
call starts (`prefetch`), so no turn waits for it.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Literal

import numpy as np

from harness.agent.oracle_config import Delay

FillerMode = Literal["ack+bridge", "ack", "none"]
FILLER_MODES: tuple[str, ...] = ("ack+bridge", "ack", "none")
ACK = "Let me pull that up."
BRIDGES = ("Still checking, one moment.", "Almost there, thanks for waiting.", "Sorry, this is taking a moment.")
PREFETCHED = "customer_profile"

INTENTS: tuple[tuple[str, re.Pattern], ...] = (
    ("lookup_order", re.compile(r"\b(order|orders|charged|refund|delivery|package|shipping|shipped)\b")),
    ("check_availability", re.compile(r"\b(book|booking|table|appointment|reschedule|schedule|reservation)\b")),
    ("find_invoice", re.compile(r"\b(invoice|invoices|receipt|statement)\b")),
    ("search_flights", re.compile(r"\b(flight|flights|fly)\b")),
    (PREFETCHED, re.compile(r"\b(balance|account|plan|subscription)\b")),
)
"""Which tool a transcript needs: the first intent whose words it holds."""

RESULTS = {
    "lookup_order": {"order": "73925", "status": "shipped", "arriving": "Thursday"},
    "check_availability": {"date": "Tuesday", "open_slots": ["10:30", "14:00", "19:00"]},
    "find_invoice": {"invoice": "INV-2291", "amount": "$48.20", "sent_to": "the email on file"},
    "search_flights": {"route": "Boston to Denver", "direct": True, "departures": ["08:05", "17:40"]},
    PREFETCHED: {"name": "Alex", "plan": "premium", "balance": "$12.50"},
}


class ToolFailed(Exception):
    """The backend answered with an error (or not at all)."""


def route(transcript: str) -> str | None:
    """The tool a caller's words call for, or None."""
    text = transcript.lower()
    return next((name for name, words in INTENTS if words.search(text)), None)


@dataclass(frozen=True)
class ToolConfig:
    """How the reference agent's tools behave (`agent serve --tools on --tool-latency …`)."""

    enabled: bool = False
    latency: str = "lognormal:120:600"
    """Each backend call's latency, ms: `lognormal:MEDIAN:P99`, `uniform:A:B`, a fixed number."""
    error_rate: float = 0.0
    """Fraction of calls that fail (the agent then says it could not reach the system)."""
    fillers: FillerMode = "ack+bridge"
    """ack+bridge: an acknowledgement at once, and a bridging line whenever the call outlasts
    what has been said; ack: the acknowledgement only; none: silence until the answer."""
    prefetch: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        Delay(self.latency)  # a bad distribution is an error now, not on the first call
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError(f"tool error rate must be within 0…1, got {self.error_rate}")
        if self.fillers not in FILLER_MODES:
            raise ValueError(f"fillers {self.fillers!r}: expected one of {', '.join(FILLER_MODES)}")


class SimulatedBackend:
    """A CRM/scheduling API with drawn latency and failures; `simulated` in every label."""

    name = "sim-crm"
    simulated = True

    def __init__(self, cfg: ToolConfig, call_index: int = 0):
        self.cfg = cfg
        self._delay = Delay(cfg.latency)
        self._rng = np.random.default_rng([cfg.seed, call_index])

    async def call(self, tool: str) -> dict:
        """The tool's result after a drawn latency; ToolFailed at the configured rate."""
        latency_ms = self._delay.draw(self._rng)
        fails = bool(self._rng.random() < self.cfg.error_rate)
        await asyncio.sleep(latency_ms / 1000)
        if fails:
            raise ToolFailed(f"{tool}: backend error 503")
        return dict(RESULTS.get(tool, {}))


def with_result(messages: list[dict], tool: str, result: dict | None, error: str | None) -> list[dict]:
    """The conversation with the tool's answer given to the LLM alongside the caller's last words."""
    note = (f"(The {tool.replace('_', ' ')} system could not be reached: {error}. Apologise briefly.)"
            if error else f"(Result of {tool.replace('_', ' ')}: "
                          + "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in (result or {}).items()) + ")")
    *head, last = messages
    return [*head, {**last, "content": f"{last['content']}\n{note}"}]
