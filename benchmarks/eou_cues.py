"""The end-of-turn cues on every fixture's pauses (unfinished) and ends (finished), offline.

For each utterance, paused and filler fixture: the audio up to 100 ms after each speech segment
(what the agent has when it first decides), pocketsphinx's partial transcript of it, and each cue
of the `smart` policy: Smart Turn v3.2's P(complete) from the audio, SmolLM2's lexical score, and
the pitch/energy shift. Then how many paused turns each policy would cut into (the pause is
shorter than the silence the policy needs) and the silence it needs at finished turns.

    python benchmarks/eou_cues.py          # ~1 minute; --rows to print every cue
"""

from __future__ import annotations

import argparse

import numpy as np

from harness.agent.providers.eou_smollm import EouModel
from harness.agent.providers.stt_pocketsphinx import PocketsphinxStt
from harness.agent.providers.turn_semantic import (
    TAIL_SAMPLES,
    SemanticTurn,
    acoustic_completeness,
    lexical_completeness,
    lm_completeness,
)
from harness.agent.providers.turn_smart import SmartTurn, SmartTurnModel
from harness.audio.fixtures import FixtureLibrary

KINDS = ("utterance", "paused", "filler")


def cues() -> list[dict]:
    model, lm, stt = SmartTurnModel(), EouModel(), PocketsphinxStt()
    rows = []
    for fx in FixtureLibrary.load().fixtures.values():
        if fx.kind not in KINDS:
            continue
        pcm = fx.samples
        for k, (_, end) in enumerate(fx.segments):
            cut = int((end + 0.1) * 16000)
            stt.start()
            partial = ""
            for i in range(0, cut, 320):
                partial = stt.feed(pcm[i:i + 320]) or partial
            stt.finish()
            tail = pcm[max(0, int(end * 16000) - TAIL_SAMPLES):int(end * 16000)].astype(np.float32) / 32768
            complete = k == len(fx.segments) - 1
            rows.append({"fixture": fx.id, "complete": complete, "kind": fx.kind,
                         "pause_ms": None if complete else fx.pauses_ms[k], "text": partial,
                         "audio": model.p_complete(pcm[:cut]),
                         "lexical": lm_completeness(lm.p_end(partial)) if partial else lexical_completeness(partial),
                         "prosody": acoustic_completeness(tail)})
    return rows


def needed(policy, row: dict, audio_weight: float) -> float:
    lexical = row["lexical"] if row["lexical"] is not None else 0.5
    score = audio_weight * row["audio"] + (1 - audio_weight) * lexical + row["prosody"]
    return policy.needed_for(min(1.0, max(0.0, score)))


def main(show_rows: bool) -> None:
    rows = cues()
    if show_rows:
        for r in rows:
            print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()})
    smart = SmartTurn.__new__(SmartTurn)  # only its thresholds: no models loaded twice
    smart.min_ms, smart.max_ms = 200.0, 1500.0
    semantic = SemanticTurn.__new__(SemanticTurn)
    semantic.min_ms, semantic.max_ms = 300.0, 1500.0
    policies = {"vad 600 ms": (None, 0.0), "semantic": (semantic, 0.0), "smart, lexical only": (smart, 0.0),
                "smart (audio 0.3)": (smart, 0.3), "smart, audio 0.5": (smart, 0.5), "audio alone": (smart, 1.0)}
    pauses = [r for r in rows if not r["complete"] and r["kind"] == "paused"]
    ends = [r for r in rows if r["complete"]]
    print(f"{len(pauses)} pauses (400/800/1200 ms) in paused turns, {len(ends)} finished turns")
    print(f"{'policy':<22} {'pauses cut into':>16} {'silence needed at ends: P50':>28} {'P90':>6} {'mean':>6}")
    for name, (policy, w) in policies.items():
        def need(r: dict, policy=policy, w=w) -> float:
            return 600.0 if policy is None else needed(policy, r, w)
        cut = sum(need(r) < r["pause_ms"] for r in pauses)
        at_end = np.array([need(r) for r in ends])
        print(f"{name:<22} {cut:>10} of {len(pauses):<4} {np.percentile(at_end, 50):>22.0f} ms "
              f"{np.percentile(at_end, 90):>6.0f} {at_end.mean():>6.0f}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", action="store_true", help="print every cue")
    main(ap.parse_args().rows)
