"""How long `turnbench report` takes on a 100 000-turn run (the bar: ≤ 10 s).

Builds a run folder by replicating the committed reference baseline's turns (latencies jittered,
calls renumbered, spread over concurrency 1–16 and an hour of run time), then times the real
command end to end in a fresh process, imports included:

    python3 benchmarks/report_100k.py [--turns 100000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "reports/baselines/conversation-reference"


def build(folder: Path, n: int, seed: int = 0) -> None:
    from harness.metrics.summary import summarize

    src = [json.loads(x) for x in (BASELINE / "turns.jsonl").read_text().splitlines() if x.strip()]
    rng = np.random.default_rng(seed)
    per_call = max(t["turn"] for t in src) + 1
    rows = []
    for i in range(n):
        t = dict(src[i % len(src)])
        call = i // per_call
        t["call_id"] = f"c{call:06d}"
        f = float(np.exp(0.15 * rng.standard_normal()))
        for k in ("latency_ms", "first_byte_ms", "turn_detection_ms", "barge_in_stop_ms"):
            if t.get(k) is not None:
                t[k] = round(t[k] * f, 3)
        t["call_started_s"] = round(call * 3600.0 / (n / per_call), 3)
        t["calls_in_flight"] = 1 + call % 16
        rows.append(t)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(BASELINE / "run.json", folder / "run.json")
    with (folder / "turns.jsonl").open("w") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    summary = summarize(rows, calls=n // per_call, target="reference", transport="ws-pcm", scenario="conversation",
                        harness=json.loads((BASELINE / "summary.json").read_text())["harness"])
    summary["thresholds"] = []
    (folder / "summary.json").write_text(json.dumps(summary))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--turns", type=int, default=100_000)
    ap.add_argument("--keep", type=Path, default=None, help="build the run folder here and keep it")
    args = ap.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="turnbench-100k-")) / "run"
    print(f"building {args.turns} turns in {folder} …", file=sys.stderr)
    build(folder, args.turns)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "harness.cli", "report", str(folder)], check=True)
    took = time.perf_counter() - t0
    size = (folder / "report.html").stat().st_size / 1e6
    print(f"report for {args.turns} turns: {took:.2f} s end to end ({size:.1f} MB); bar ≤ 10 s: "
          f"{'met' if took <= 10 else 'NOT met'}")
    if args.keep is None:
        shutil.rmtree(folder.parent)


if __name__ == "__main__":
    main()
