"""What a cell's calls consumed (audio minutes, LLM tokens, TTS characters) and, with the
user's prices, what a minute of call would cost: beside latency, the other half of a vendor
choice.

Usage comes from the run folders: call length from `timelines.jsonl` (the caller's stream),
the rest from the reference agent's `reply.usage` events in `agent_events.jsonl`.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.metrics.envelope import STEP_MS
from harness.results.folder import read_rows

CHARS_PER_TOKEN = 4.0
"""Tokens are estimated from characters (English text, common BPE tokenisers: ~4 a token)."""


class SttPrice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    per_audio_minute: float = Field(ge=0)


class LlmPrice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    per_1k_tokens: float | None = Field(None, ge=0)
    per_1k_input_tokens: float | None = Field(None, ge=0)
    per_1k_output_tokens: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _some(self) -> LlmPrice:
        if self.per_1k_tokens is None and (self.per_1k_input_tokens is None or self.per_1k_output_tokens is None):
            raise ValueError("give per_1k_tokens, or both per_1k_input_tokens and per_1k_output_tokens")
        return self

    def cost(self, tokens_in: float, tokens_out: float) -> float:
        p_in = self.per_1k_input_tokens if self.per_1k_input_tokens is not None else self.per_1k_tokens
        p_out = self.per_1k_output_tokens if self.per_1k_output_tokens is not None else self.per_1k_tokens
        return (tokens_in * p_in + tokens_out * p_out) / 1000.0


class TtsPrice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    per_1k_chars: float = Field(ge=0)


class Prices(BaseModel):
    """prices.yaml: a price per provider name, by stage, in one currency."""

    model_config = ConfigDict(extra="forbid")
    currency: str = "USD"
    stt: dict[str, SttPrice] = Field(default_factory=dict)
    llm: dict[str, LlmPrice] = Field(default_factory=dict)
    tts: dict[str, TtsPrice] = Field(default_factory=dict)


def load_prices(path: Path) -> Prices:
    from harness.scenario.loader import read_yaml_model
    prices, _root, _raw = read_yaml_model(path, Prices, what="prices file",
                                          shape="a mapping of stt/llm/tts to {provider: price}")
    return prices


def usage_of(folder: Path) -> dict:
    """One run folder's consumption: call minutes, LLM characters in and out, TTS characters."""
    minutes = 0.0
    for row in read_rows(folder / "timelines.jsonl", missing_ok=True):
        minutes += len(base64.b64decode(row.get("caller_peaks") or "")) * STEP_MS / 60_000.0
    prompt = reply = tts = replies = 0
    events = folder / "agent_events.jsonl"
    if events.exists():
        with events.open(errors="replace") as f:
            for line in f:
                if '"reply.usage"' not in line:
                    continue
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue  # a line torn by a killed agent
                prompt += ev.get("llm_prompt_chars", 0)
                reply += ev.get("llm_reply_chars", 0)
                tts += ev.get("tts_chars", 0)
                replies += 1
    return {"call_minutes": round(minutes, 4), "replies": replies, "llm_prompt_chars": prompt,
            "llm_reply_chars": reply, "tts_chars": tts}


def add_usage(a: dict, b: dict) -> dict:
    return {k: round(a.get(k, 0) + b.get(k, 0), 4) for k in {**a, **b}}


def cost_per_call_minute(usage: dict, providers: dict[str, list[str]], prices: Prices) -> dict:
    """{per_call_minute, by_stage: {stt, llm, tts}, missing}: the cost of one minute of call at
    these prices; a stage whose provider has no price makes the total null (and is named).
    `providers`: per stage, the names a price may be listed under (as chosen, as the agent ran it)."""
    minutes = usage.get("call_minutes") or 0.0

    def pick(stage: str, table: dict) -> str | None:
        names = [n for n in providers.get(stage, []) if n]
        return next((n for n in names if n in table), names[0] if names else None)
    stt, llm, tts = pick("stt", prices.stt), pick("llm", prices.llm), pick("tts", prices.tts)
    by_stage: dict[str, float | None] = {}
    missing = []
    if stt in prices.stt:
        by_stage["stt"] = prices.stt[stt].per_audio_minute * minutes
    else:
        missing.append(f"stt.{stt}")
    if llm in prices.llm:
        by_stage["llm"] = prices.llm[llm].cost(usage.get("llm_prompt_chars", 0) / CHARS_PER_TOKEN,
                                               usage.get("llm_reply_chars", 0) / CHARS_PER_TOKEN)
    else:
        missing.append(f"llm.{llm}")
    if tts in prices.tts:
        by_stage["tts"] = prices.tts[tts].per_1k_chars * usage.get("tts_chars", 0) / 1000.0
    else:
        missing.append(f"tts.{tts}")
    per_min = {k: round(v / minutes, 6) for k, v in by_stage.items()} if minutes else {}
    total = round(sum(per_min.values()), 6) if minutes and not missing else None
    return {"currency": prices.currency, "per_call_minute": total, "by_stage": per_min, "missing": missing}
