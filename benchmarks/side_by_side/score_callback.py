"""Pair callback-voice's per-turn response latencies with the listening oracle's log.

callback-voice's `results.json` gives, per call, the latency of each answered caller turn
(`response_latency_p50_s.samples`, seconds, in turn order); the oracle logs one truth line per turn
it detected. Calls are paired in connection order, turns in order.

    python benchmarks/side_by_side/score_callback.py ORACLE_LOG CALLBACK_RUNS_DIR
"""

from __future__ import annotations

import glob
import json
import sys

import numpy as np


def main() -> None:
    with open(sys.argv[1]) as f:
        oracle = [json.loads(line) for line in f if '"turnbench.oracle_truth/1"' in line]
    calls: dict[str, list[dict]] = {}
    for t in oracle:
        calls.setdefault(t["call_id"], []).append(t)
    order = sorted(calls, key=lambda c: int(c.split("-")[-1]))
    trials = []
    for path in sorted(glob.glob(sys.argv[2] + "/**/results.json", recursive=True)):
        with open(path) as f:
            doc = json.load(f)
        for scenario in doc["scenarios"]:
            for trial in scenario["trials"]:
                m = next(m for m in trial["metrics"] if m["name"] == "response_latency_p50_s")
                trials.append(m["samples"] or [])
    errors, unmatched = [], 0
    for cid, samples in zip(order, trials):
        truth = [t["latency_ms"] for t in sorted(calls[cid], key=lambda t: t["turn"]) if t["latency_ms"] is not None]
        n = min(len(truth), len(samples))
        unmatched += abs(len(truth) - len(samples))
        errors += [samples[i] * 1000 - truth[i] for i in range(n)]
    e = np.abs(np.array(errors))
    print(json.dumps({"turns_scored": int(e.size), "turns_unmatched": unmatched,
                      "abs_error_ms": None if not e.size else {"median": round(float(np.median(e)), 3),
                                                               "max": round(float(e.max()), 3)},
                      "signed_median_ms": None if not e.size else round(float(np.median(errors)), 3),
                      "errors_ms": [round(x, 1) for x in errors]}))


if __name__ == "__main__":
    main()
