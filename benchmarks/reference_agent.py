"""The reference agent's bars, measured with turnbench itself, variants side by side in one run.

Each comparison runs its variants in alternating rounds (A, B, A, B, …) against the real local
agent, one call at a time, so a noisy neighbour on this shared machine hits both alike. Every
round is an ordinary `turnbench run` (its run folder kept under --out); the rounds' turns are
pooled and summarised the way `summary.json` is.

    python benchmarks/reference_agent.py                    # every comparison, 2 rounds each
    python benchmarks/reference_agent.py --only turn --rounds 3
    python benchmarks/reference_agent.py --json bars.json   # the numbers, for the README

Comparisons:
  pipeline   conversation: --pipeline streaming vs batch      bar: streaming P50 ≤ ½ batch P50
  turn       pauses: --turn vad vs semantic                   bar: paused FI ≤ ½ VAD's, P50 ≤ VAD's
  turn-conversation   conversation: --turn vad vs semantic     (reported, no bar)
  interrupt  barge_in: --barge-in-ms 220 (default) vs 300      bars: barge-in ≥ 95 %, stop P50 ≤ 300 ms,
                                                                    backchannel ≥ 90 %
  conversation is checked in `pipeline`: no errors; every answered turn has a latency, a
  transcript and a stage breakdown.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from harness.metrics.summary import summarize
from harness.results.folder import read_rows

REPO = Path(__file__).resolve().parents[1]
COMPARISONS = {
    "pipeline": ("conversation", {"streaming": "--pipeline streaming", "batch": "--pipeline batch"}),
    "turn": ("pauses", {"vad": "--turn vad", "semantic": "--turn semantic"}),
    "turn-conversation": ("conversation", {"vad": "--turn vad", "semantic": "--turn semantic"}),
    "interrupt": ("barge_in", {"barge-in-220ms": "--barge-in-ms 220", "barge-in-300ms": "--barge-in-ms 300"}),
}


def run_round(scenario: str, args: str, calls: int, out: Path, seed: int) -> tuple[list[dict], dict]:
    """One `turnbench run` of `calls` calls, one at a time; its turns and summary. Each round has
    its own seed (the scenario's picks differ), the same for every variant of that round."""
    before = set(out.glob("*")) if out.exists() else set()
    cmd = [sys.executable, "-m", "harness.cli", "run", str(REPO / "scenarios" / f"{scenario}.yaml"),
           "-n", str(calls), "-c", "1", "--seed", str(seed), "--no-progress", "--out", str(out)]
    if args:
        cmd += ["--agent-args", args]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if r.returncode not in (0, 1):  # 1: the scenario's own thresholds failed; still measured
        raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr[-2000:]}")
    (folder,) = set(out.glob("*")) - before
    return read_rows(folder / "turns.jsonl"), json.loads((folder / "summary.json").read_text())


def pooled(turns: list[dict], calls: int, scenario: str) -> dict:
    return summarize(turns, calls=calls, target="reference", transport="ws-pcm", scenario=scenario, harness={})


def p50(summary: dict, key: str) -> float | None:
    block = summary.get(key)
    return block["p50"] if block else None


def complete_turns(turns: list[dict]) -> tuple[int, int]:
    """(answered turns, of those the ones with a transcript and every stage)."""
    answered = [t for t in turns if t["latency_ms"] is not None]
    full = [t for t in answered if t["transcript"] is not None and t["stages_ms"]
            and all(v is not None for v in t["stages_ms"].values())]
    return len(answered), len(full)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(COMPARISONS), help="comma-separated: " + ", ".join(COMPARISONS))
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds per comparison (default 2)")
    ap.add_argument("--calls", type=int, default=1, help="calls per variant per round (default 1)")
    ap.add_argument("--out", type=Path, default=REPO / "reports" / "bench-reference", help="run folders go here")
    ap.add_argument("--json", type=Path, help="also write the pooled numbers here")
    opts = ap.parse_args()
    results: dict = {}
    for name in opts.only.split(","):
        if name not in COMPARISONS:
            ap.error(f"--only: unknown comparison {name!r} (known: {', '.join(COMPARISONS)})")
        scenario, variants = COMPARISONS[name]
        turns = {v: [] for v in variants}
        errors = {v: 0 for v in variants}
        for rnd in range(opts.rounds):
            for v, args in variants.items():
                t0 = time.monotonic()
                got, summary = run_round(scenario, args, opts.calls, opts.out / name / v, seed=rnd)
                turns[v] += got
                errors[v] += sum(summary["errors"].values())
                print(f"[{name}] round {rnd + 1}/{opts.rounds} {v}: {len(got)} turns, "
                      f"P50 {p50(summary, 'latency_ms')} ms ({time.monotonic() - t0:.0f} s)", file=sys.stderr)
        n_calls = opts.rounds * opts.calls
        results[name] = {v: {"summary": pooled(turns[v], n_calls, scenario), "call_errors": errors[v],
                             "answered_turns": complete_turns(turns[v])[0],
                             "complete_turns": complete_turns(turns[v])[1]} for v in variants}
    report(results)
    if opts.json:
        opts.json.write_text(json.dumps(results, indent=1))


def _fmt(x, unit=""):
    return "—" if x is None else f"{x:.3g}{unit}" if isinstance(x, float) else f"{x}{unit}"


def report(results: dict) -> None:
    print("| comparison | variant | turns | latency P50 / P90 ms | turn detection P50 ms | paused FI | "
          "barge-in | stop P50 ms | backchannel | errors | turns complete |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, variants in results.items():
        for v, r in variants.items():
            s = r["summary"]
            lat = s["latency_ms"]
            print(f"| {name} | {v} | {s['turns']} | {_fmt(lat and lat['p50'])} / {_fmt(lat and lat['p90'])} | "
                  f"{_fmt(p50(s, 'turn_detection_ms'))} | {_fmt(s['false_interruption_rate_paused'])} "
                  f"(n={s['false_interruption_rate_paused_n']}) | {_fmt(s['barge_in_success_rate'])} | "
                  f"{_fmt(p50(s, 'barge_in_stop_ms'))} | {_fmt(s['backchannel_success_rate'])} | "
                  f"{r['call_errors']} | {r['complete_turns']}/{r['answered_turns']} |")
    if "pipeline" in results:
        a, b = (p50(results["pipeline"][v]["summary"], "latency_ms") for v in ("streaming", "batch"))
        if a and b:
            print(f"\nstreaming P50 / batch P50 = {a / b:.2f} (bar ≤ 0.5)")
    if "turn" in results:
        vad, sem = (results["turn"][v]["summary"] for v in ("vad", "semantic"))
        fv, fs = vad["false_interruption_rate_paused"], sem["false_interruption_rate_paused"]
        if fv is not None and fs is not None:
            print(f"paused FI semantic / vad = {fs:.3f} / {fv:.3f} (bar ≤ ½); "
                  f"P50 semantic / vad = {_fmt(p50(sem, 'latency_ms'))} / {_fmt(p50(vad, 'latency_ms'))} ms (bar ≤)")


if __name__ == "__main__":
    main()
