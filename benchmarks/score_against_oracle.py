"""Score any tool's per-turn latencies against the listening oracle's log (`agent serve --oracle --listen --log F`).

The oracle numbers its turns by its own rule (docs/calibration.md, "The listening oracle") and logs
each turn's end of speech as a stream sample, so a tool's turns are matched by where their end of
speech falls in the caller's stream: no clock and no call id are shared. This script reads only
the two files, as an outside tool would:

    python benchmarks/score_against_oracle.py ORACLE_LOG TURNS.jsonl [--tolerance-ms 30]

TURNS.jsonl: one JSON object per turn with `call_id`, `eos_s` (end of speech, seconds from the
call's first audio frame) and `latency_ms` (turnbench's turns.jsonl has these; for another tool,
write them in that shape).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict

import numpy as np

SAMPLE_RATE = 16_000


def load(path: str, schema_prefix: str | None = None) -> list[dict]:
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    sys.exit(f"{path}:{n}: not JSON ({e.msg})")
                if schema_prefix is None or str(row.get("schema", "")).startswith(schema_prefix):
                    rows.append(row)
    return rows


def score(oracle: list[dict], turns: list[dict], tolerance_ms: float = 30.0) -> dict:
    """Match each measured turn to the oracle turn ending at the same point of the stream."""
    by_call: dict[str, dict[int, dict]] = defaultdict(dict)
    for t in oracle:
        if t.get("segments") and t.get("latency_ms") is not None:
            by_call[t["call_id"]][int(t["segments"][-1][1])] = t
    measured: dict[str, list[dict]] = defaultdict(list)
    for t in turns:
        if t.get("latency_ms") is not None and t.get("eos_s") is not None:
            measured[t["call_id"]].append(t)
    errors, unmatched = [], 0
    free = set(by_call)
    for rows in measured.values():
        best, best_pairs = None, []
        for oc in free:  # the oracle call whose turn ends line up with this call's
            ends = np.array(sorted(by_call[oc]))
            pairs = []
            for t in rows:
                i = int(np.argmin(np.abs(ends / SAMPLE_RATE - t["eos_s"])))
                if abs(ends[i] / SAMPLE_RATE - t["eos_s"]) * 1000 <= tolerance_ms:
                    pairs.append((t, by_call[oc][int(ends[i])]))
            if len(pairs) > len(best_pairs):
                best, best_pairs = oc, pairs
        if best is not None:
            free.discard(best)
        unmatched += len(rows) - len(best_pairs)
        errors += [m["latency_ms"] - o["latency_ms"] for m, o in best_pairs]
    e = np.abs(np.array(errors)) if errors else np.zeros(0)
    return {"turns_scored": int(e.size), "turns_unmatched": unmatched,
            "abs_error_ms": None if not e.size else {
                "median": round(float(np.median(e)), 3), "p99": round(float(np.percentile(e, 99)), 3),
                "max": round(float(e.max()), 3)},
            "signed_median_ms": None if not e.size else round(float(np.median(errors)), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("oracle_log")
    ap.add_argument("turns")
    ap.add_argument("--tolerance-ms", type=float, default=30.0,
                    help="how far apart two ends of speech may be and still be the same turn's")
    a = ap.parse_args()
    print(json.dumps(score(load(a.oracle_log, "turnbench.oracle_truth"), load(a.turns), a.tolerance_ms), indent=1))


if __name__ == "__main__":
    main()
