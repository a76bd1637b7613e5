"""`summary.json` (schema turnbench.summary/2) from the turns of a run."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from harness.metrics import catalog
from harness.metrics.catalog import STAGE_SEED, STAGES
from harness.metrics.stats import percentile_summary, rate

SUMMARY_SCHEMA = "turnbench.summary/2"
"""/2: `stages_ms` summarises the consecutive stages of turnbench.turn/2 (with `turn_detection`)."""


def summarize(turns: Iterable[dict], *, calls: int, target: str, transport: str, scenario: str,
              harness: dict, call_errors: Iterable[str] = ()) -> dict:
    """Aggregate turn rows (dicts as written to turns.jsonl) into the summary document.

    `errors` counts failed calls by kind; the turns of a failed call carry the message too.
    """
    turns = list(turns)
    call_errors = list(call_errors)
    errors = Counter(_error_kind(e) for e in call_errors)
    examples: dict[str, str] = {}
    for e in call_errors:
        examples.setdefault(_error_kind(e), e[:500])
    out: dict = {"schema": SUMMARY_SCHEMA, "calls": calls, "turns": len(turns), "errors": dict(errors),
                 "error_examples": examples, "target": target, "transport": transport, "scenario": scenario}
    for m in catalog.CATALOG:
        rows = turns if m.kind is None else [t for t in turns if t["kind"] == m.kind]
        if m.aggregate == "percentiles":
            out[m.name] = percentile_summary((t.get(m.field) for t in rows), seed=m.seed)
        elif m.aggregate == "rate":
            value, ci, n = rate(t.get(m.field) for t in rows)
            out[m.name], out[f"{m.name}_ci95"], out[f"{m.name}_n"] = value, ci, n
        else:
            vals = [t[m.field] for t in rows if t.get(m.field) is not None]
            out[m.name] = round(sum(vals) / len(vals), 4) if vals else None
    staged = [t["stages_ms"] for t in turns if t.get("stages_ms")]
    out["stages_ms"] = ({k: percentile_summary((s.get(k) for s in staged), seed=STAGE_SEED + i)
                         for i, k in enumerate(STAGES)} if staged else None)
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
    """Group error messages by their leading words, at most four (e.g. 'connection lost',
    'refused', 'offer answered HTTP 422')."""
    head = message.split(":")[0].strip()
    words = head.split()
    return " ".join(words[:4]) if words else "error"
