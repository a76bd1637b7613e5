"""`summary.json` (schema turnbench.summary/1) from the turns of a run."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from harness.metrics.stats import percentile_summary, rate
from harness.metrics.turns import STAGES

SUMMARY_SCHEMA = "turnbench.summary/1"


def summarize(turns: Iterable[dict], *, calls: int, target: str, transport: str, scenario: str,
              harness: dict, call_errors: Iterable[str] = ()) -> dict:
    """Aggregate turn rows (dicts as written to turns.jsonl) into the summary document.

    `errors` counts failed calls by kind; the turns of a failed call carry the message too.
    """
    turns = list(turns)
    errors = Counter(_error_kind(e) for e in call_errors)
    out: dict = {"schema": SUMMARY_SCHEMA, "calls": calls, "turns": len(turns), "errors": dict(errors),
                 "target": target, "transport": transport, "scenario": scenario}
    out["latency_ms"] = percentile_summary((t["latency_ms"] for t in turns), seed=1)
    out["first_byte_ms"] = percentile_summary((t["first_byte_ms"] for t in turns), seed=2)
    paused = [t for t in turns if t["kind"] == "paused"]
    for name, flags in (
        ("false_interruption_rate", (t["false_interruption"] for t in turns)),
        ("false_interruption_rate_paused", (t["false_interruption"] for t in paused)),
        ("barge_in_success_rate", (t["barge_in_success"] for t in turns)),
        ("backchannel_success_rate", (t["backchannel_ok"] for t in turns)),
        ("no_response_rate", (t["no_response"] for t in turns)),
    ):
        value, ci, n = rate(flags)
        out[name], out[f"{name}_ci95"], out[f"{name}_n"] = value, ci, n
    out["barge_in_stop_ms"] = percentile_summary((t["barge_in_stop_ms"] for t in turns), seed=3)
    out["turn_detection_ms"] = percentile_summary((t["turn_detection_ms"] for t in turns), seed=4)
    staged = [t["stages_ms"] for t in turns if t.get("stages_ms")]
    out["stages_ms"] = ({k: percentile_summary((s.get(k) for s in staged), seed=5 + i)
                         for i, k in enumerate(STAGES)} if staged else None)
    wers = [t["wer"] for t in turns if t.get("wer") is not None]
    out["wer"] = round(sum(wers) / len(wers), 4) if wers else None
    setups = {t["call_id"]: t.get("setup_ms") for t in turns if t.get("setup_ms") is not None}
    out["setup_ms"] = percentile_summary(setups.values(), seed=9) if setups else None
    out["harness"] = harness
    notes = []
    heard_any = any(t["latency_ms"] is not None or t["false_interruption"] or t["barge_in_stop_ms"] is not None
                    or t["backchannel_ok"] is not None for t in turns)
    out["target_spoke"] = heard_any
    if turns and not heard_any:
        notes.append("the target never spoke: no audible agent audio in any turn")
    if out["latency_ms"] and out["latency_ms"]["p99_low_n"]:
        notes.append(f"P99 rests on {out['latency_ms']['n']} samples (< 100): treat it as indicative")
    if harness.get("overloaded"):
        steal = harness.get("cpu_steal_pct")
        why = f"; the hypervisor took {steal} % of the CPU meanwhile" if steal else ""
        notes.append(f"the harness fell behind its own schedule (send lateness p99 {harness.get('send_lateness_ms_p99')} ms, "
                     f"loop lag p99 {harness.get('loop_lag_ms_p99')} ms){why}: treat latencies as suspect")
    out["notes"] = notes
    return out


def _error_kind(message: str) -> str:
    """Group error messages by their leading words (e.g. 'connection lost', 'target closed')."""
    head = message.split(":")[0].strip()
    words = head.split()
    return " ".join(words[:3]) if words else "error"
