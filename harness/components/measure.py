"""Measure one stage's providers on the same inputs, rounds interleaved (round → input →
provider), so a shared machine's drift falls on every provider alike.

* TTS: time to first audio (the first chunk of `synthesize`), real-time factor (synthesis time /
  audio duration), on a fixed set of agent replies.
* STT: each fixture utterance fed in 20 ms frames as fast as the provider takes them; time to
  final after the end of speech (`finish`, the audio up to then already fed), feed cost per
  20 ms frame, partial stability (how much of each partial the final keeps), WER.
* LLM: time to first token and tokens (stream deltas) per second after it, on fixed prompts.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import numpy as np

from harness.audio.frames import FRAME_SAMPLES, SAMPLE_RATE
from harness.metrics.stats import percentile_summary
from harness.metrics.turns import word_error_rate

COMPONENT_SCHEMA = "turnbench.component/1"
NOTE = "component numbers, not end-to-end: a caller hears these plus turn detection, the other stages and transport"

TTS_TEXTS = (
    "Sure, I can help with that.",
    "Your appointment is on Friday at three in the afternoon.",
    "The pharmacy closes at nine tonight.",
    "I'm sorry, I didn't catch that. Could you say it again?",
    "Your balance is two hundred and forty dollars.",
    "Let me check that for you.",
)
LLM_PROMPTS = (
    "Can I book a table for four on Friday?",
    "What time does the pharmacy close?",
    "I think I was charged twice this month.",
    "How much does the premium plan cost?",
    "Could you repeat that, please?",
)
SYSTEM = "You are a phone agent. Answer in one short spoken sentence."


@dataclass
class Sample:
    """One measurement of one provider on one input."""

    provider: str
    round: int
    input: str
    metrics: dict


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def partial_stability(partials: list[str], final: str) -> float | None:
    """Mean share of each partial's words that the final keeps as its own prefix (1: partials
    only ever grew into the final; low: they were rewritten)."""
    fin = _words(final)
    shares = []
    for p in partials:
        w = _words(p)
        if not w:
            continue
        keep = 0
        for a, b in zip(w, fin):
            if a != b:
                break
            keep += 1
        shares.append(keep / len(w))
    return round(float(np.mean(shares)), 4) if shares else None


def tts_sample(tts, text: str) -> dict:
    t0 = time.perf_counter_ns()
    first_ns, samples = None, 0
    for chunk in tts.synthesize(text):
        if first_ns is None and len(chunk):
            first_ns = time.perf_counter_ns()
        samples += len(chunk)
    total_ms = (time.perf_counter_ns() - t0) / 1e6
    audio_ms = samples * 1000 / SAMPLE_RATE
    return {"first_audio_ms": round((first_ns - t0) / 1e6, 3) if first_ns else None,
            "synthesis_ms": round(total_ms, 3), "audio_ms": round(audio_ms, 1),
            "rtf": round(total_ms / audio_ms, 4) if audio_ms else None}


def stt_sample(stt, samples: np.ndarray, speech_end: int, reference: str) -> dict:
    """`samples` up to the end of speech are fed, then `finish` (time to final after EOS)."""
    stt.start()
    partials, feed_ns = [], []
    for i in range(0, speech_end, FRAME_SAMPLES):
        t = time.perf_counter_ns()
        p = stt.feed(samples[i : min(i + FRAME_SAMPLES, speech_end)])
        feed_ns.append(time.perf_counter_ns() - t)
        if p:
            partials.append(p)
    t = time.perf_counter_ns()
    final = stt.finish()
    final_ms = (time.perf_counter_ns() - t) / 1e6
    return {"final_after_eos_ms": round(final_ms, 3), "feed_ms_per_frame_p50": round(float(np.median(feed_ns)) / 1e6, 4),
            "feed_ms_per_frame_max": round(max(feed_ns) / 1e6, 3) if feed_ns else None,
            "partials": len(partials), "partial_stability": partial_stability(partials, final),
            "wer": word_error_rate(reference, final), "transcript": final}


async def llm_sample(llm, prompt: str) -> dict:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]
    t0 = time.perf_counter_ns()
    first_ns = last_ns = None
    deltas, text = 0, []
    async for delta in llm.stream(messages):
        now = time.perf_counter_ns()
        if first_ns is None:
            first_ns = now
        last_ns, deltas = now, deltas + 1
        text.append(delta)
    rate = (deltas - 1) / ((last_ns - first_ns) / 1e9) if first_ns and last_ns > first_ns and deltas > 1 else None
    return {"first_token_ms": round((first_ns - t0) / 1e6, 3) if first_ns else None,
            "tokens": deltas, "tokens_per_s": round(rate, 2) if rate else None, "reply": "".join(text)[:200]}


def interleaved(providers: dict, inputs: Iterable, rounds: int, one: Callable, progress=lambda done, total: None
                ) -> list[Sample]:
    """round → input → provider, each measured by `one(provider, input)`."""
    inputs = list(inputs)
    total, done, out = rounds * len(inputs) * len(providers), 0, []
    for r in range(rounds):
        for label, item in inputs:
            for name, p in providers.items():
                out.append(Sample(name, r, label, one(p, item)))
                done += 1
                progress(done, total)
    return out


def run_llm(providers: dict, prompts: Iterable[str], rounds: int, progress=lambda d, t: None) -> list[Sample]:
    async def go() -> list[Sample]:
        out, items = [], list(prompts)
        total, done = rounds * len(items) * len(providers), 0
        for r in range(rounds):
            for prompt in items:
                for name, p in providers.items():
                    out.append(Sample(name, r, prompt, await llm_sample(p, prompt)))
                    done += 1
                    progress(done, total)
        return out
    return asyncio.run(go())


SUMMARISED = {"tts": ("first_audio_ms", "rtf", "synthesis_ms"),
              "stt": ("final_after_eos_ms", "feed_ms_per_frame_p50", "partial_stability", "wer"),
              "llm": ("first_token_ms", "tokens_per_s")}


def document(stage: str, samples: list[Sample], rounds: int, inputs: int, machine: dict | None = None) -> dict:
    """The versioned result: per provider a percentile summary of each metric, the ratio of each
    provider's P50 to the first one's, and every sample."""
    names = list(dict.fromkeys(s.provider for s in samples))
    providers = {}
    for i, name in enumerate(names):
        rows = [s.metrics for s in samples if s.provider == name]
        providers[name] = {m: percentile_summary((r.get(m) for r in rows), seed=i) for m in SUMMARISED[stage]}
    first = names[0] if names else None
    for name in names:
        ratios = {}
        for m in SUMMARISED[stage]:
            a, b = providers[name].get(m), providers[first].get(m)
            if a and b and b["p50"]:
                ratios[m] = round(a["p50"] / b["p50"], 3)
        providers[name]["p50_ratio_to_" + first] = ratios
    return {"schema": COMPONENT_SCHEMA, "stage": stage, "note": NOTE, "rounds": rounds, "inputs": inputs,
            "providers": providers, "machine": machine, "samples": [asdict(s) for s in samples]}
