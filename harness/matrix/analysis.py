"""matrix.json (turnbench.matrix/1): every cell's turns pooled over its rounds, the
percentiles with bootstrap intervals, where the time goes, quality rates, usage and cost, the
pairwise differences (bootstrap over turns) and a ranking that does not rank noise."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.agent.providers.registry import DEFAULTS
from harness.matrix.cost import Prices, add_usage, cost_per_call_minute, usage_of
from harness.matrix.plan import Cell
from harness.metrics.catalog import STAGES
from harness.metrics.compare import bootstrap_delta
from harness.metrics.stats import bootstrap_ci
from harness.metrics.summary import summarize
from harness.results.folder import read_rows

MATRIX_SCHEMA = "turnbench.matrix/1"
PAIR_METRICS = ("latency_ms.p50", "latency_ms.p99")
MORE = ("dead_air_ms", "first_content_ms", "fillers_per_reply", "speculative_reply_rate",
        "speculations_discarded_per_turn")
"""Summary metrics every cell carries besides latency, turn detection and the rates."""
RANK_METRIC = "latency_ms.p50"
RATES = ("false_interruption_rate", "false_interruption_rate_paused", "barge_in_success_rate",
         "backchannel_success_rate", "no_response_rate")


@dataclass
class RoundResult:
    """One cell in one round: a run folder, or why there is none."""

    round: int
    folder: Path
    status: str
    """completed, interrupted or failed (the agent did not start, or no call was measured)."""
    error: str | None = None
    providers: dict = field(default_factory=dict)
    """What the agent said it ran: stage → provider name."""

    _rows: list[dict] | None = field(default=None, repr=False)

    def turns(self) -> list[dict]:
        """Its turns.jsonl (read once: a round is added when it has finished)."""
        if self._rows is None:
            self._rows = read_rows(self.folder / "turns.jsonl", missing_ok=True)
        return self._rows


def latency_block(values: np.ndarray, seed: int = 1) -> dict | None:
    """P50/P90/P99 with 95 % bootstrap intervals of each, n and mean."""
    if values.size == 0:
        return None
    out = {"n": int(values.size), "mean": round(float(values.mean()), 3)}
    ci = {}
    for i, q in enumerate((50, 90, 99)):
        out[f"p{q}"] = round(float(np.percentile(values, q)), 3)
        ci[f"p{q}"] = bootstrap_ci(values, q, seed=seed + i)
    return {**out, "ci95": ci, "p99_low_n": bool(values.size < 100)}


def cell_document(cell: Cell, rounds: list[RoundResult], prices: Prices | None) -> dict:
    """One cell of matrix.json, from its rounds' run folders."""
    rows: list[dict] = []
    usage: dict = {}
    per_round = []
    calls = 0
    for r in rounds:
        turns = r.turns() if r.status != "failed" else []
        rows += turns
        calls += len({t["call_id"] for t in turns})
        if r.status != "failed":
            usage = add_usage(usage, usage_of(r.folder))
        lat = [t["latency_ms"] for t in turns if t.get("latency_ms") is not None]
        per_round.append({"round": r.round, "folder": str(r.folder), "status": r.status, "error": r.error,
                          "turns": len(turns), "latency_p50_ms": round(float(np.median(lat)), 3) if lat else None})
    providers = next((r.providers for r in rounds if r.providers), {}) or dict(cell.providers)
    summary = summarize(rows, calls=calls, target="reference", transport="", scenario="", harness={})
    latency = np.array([t["latency_ms"] for t in rows if t.get("latency_ms") is not None], dtype=np.float64)
    measured = latency.size > 0
    status = "failed" if not measured else ("partial" if any(r.status != "completed" for r in rounds) else "ok")
    doc = {**cell.to_json(), "providers_run": providers, "status": status,
           "errors": [f"round {r.round}: {r.error}" for r in rounds if r.error],
           "rounds": per_round, "calls": calls, "turns": len(rows),
           "latency_ms": latency_block(latency), "turn_detection_ms": summary["turn_detection_ms"],
           "stages_ms": _stages(rows), "wer": summary["wer"],
           **{k: summary[k] for k in RATES}, **{f"{k}_ci95": summary[f"{k}_ci95"] for k in RATES},
           **{f"{k}_n": summary[f"{k}_n"] for k in RATES},
           **{k: summary.get(k) for k in MORE},
           "call_errors": summary["errors"], "usage": usage or None}
    names = {s: [cell.providers.get(s) or DEFAULTS[s], providers.get(s)] for s in ("stt", "llm", "tts")}
    doc["cost"] = cost_per_call_minute(usage, names, prices) if prices is not None and usage else None
    return doc


def _stages(rows: list[dict]) -> dict | None:
    """Per stage: mean (the stages sum to the latency, so the means sum to the mean latency), P50, P90."""
    staged = [t["stages_ms"] for t in rows if t.get("stages_ms")]
    if not staged:
        return None
    out = {}
    for s in STAGES:
        v = np.array([x[s] for x in staged if x.get(s) is not None], dtype=np.float64)
        out[s] = ({"n": int(v.size), "mean": round(float(v.mean()), 3), "p50": round(float(np.median(v)), 3),
                   "p90": round(float(np.percentile(v, 90)), 3)} if v.size else None)
    return out


def pairwise(cells: list[dict], samples: dict[str, np.ndarray]) -> list[dict]:
    """B − A for every pair of measured cells, per metric, with the bootstrap 95 % interval."""
    names = [c["name"] for c in cells if c["status"] != "failed"]
    out = []
    for i, (a, b) in enumerate(itertools.combinations(names, 2)):
        for metric in PAIR_METRICS:
            d = bootstrap_delta(metric, samples[a], samples[b], seed=17 + i)
            faster = None if d.diff is None or not d.significant else (b if d.diff < 0 else a)
            out.append({"a": a, "b": b, "metric": metric, "a_value": _r(d.a), "b_value": _r(d.b),
                        "n_a": d.n_a, "n_b": d.n_b, "diff": _r(d.diff),
                        "ci95": [_r(x) for x in d.ci95] if d.ci95 else None,
                        "significant": d.significant, "faster": faster})
    return out


def ranking(cells: list[dict], pairs: list[dict]) -> list[dict]:
    """Measured cells by latency P50, fastest first. A cell whose P50 is not told apart from the
    one ranked above it (the interval of the difference holds zero) shares its rank."""
    measured = sorted((c for c in cells if c["status"] != "failed"), key=lambda c: c["latency_ms"]["p50"])
    sig = {(p["a"], p["b"]): p["significant"] for p in pairs if p["metric"] == RANK_METRIC}
    out, rank = [], 0
    for i, c in enumerate(measured):
        tied = i > 0 and not (sig.get((measured[i - 1]["name"], c["name"]))
                              or sig.get((c["name"], measured[i - 1]["name"])))
        rank = rank if tied else i + 1
        out.append({"rank": rank, "cell": c["name"], "latency_p50_ms": c["latency_ms"]["p50"],
                    "latency_p99_ms": c["latency_ms"]["p99"], "tied_with_above": tied,
                    "wer": c["wer"], "cost_per_call_minute": (c["cost"] or {}).get("per_call_minute")})
    for c in cells:
        if c["status"] == "failed":
            out.append({"rank": None, "cell": c["name"], "latency_p50_ms": None, "latency_p99_ms": None,
                        "tied_with_above": False, "wer": None, "cost_per_call_minute": None})
    return out


def matrix_document(cells: list[Cell], results: dict[str, list[RoundResult]], prices: Prices | None,
                    meta: dict) -> dict:
    """The whole matrix.json (written after every cell of every round)."""
    docs = [cell_document(c, results.get(c.name, []), prices) for c in cells]
    samples = {}
    for c in cells:
        rows = [t for r in results.get(c.name, []) if r.status != "failed" for t in r.turns()]
        samples[c.name] = np.array([t["latency_ms"] for t in rows if t.get("latency_ms") is not None])
    pairs = pairwise(docs, samples)
    return {"schema": MATRIX_SCHEMA, **meta, "cells": docs, "pairwise": pairs, "ranking": ranking(docs, pairs),
            "prices": prices.model_dump() if prices is not None else None}


def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), 3)


def matrix_table(doc: dict) -> str:
    """The ranking as a terminal table (the CLI's last word)."""
    cells = {c["name"]: c for c in doc["cells"]}
    head = ["rank", "cell", "P50 ms", "P90 ms", "P99 ms", "turn det. P50", "WER", "false int.", "barge-in", "turns"]
    cost = doc.get("prices") is not None
    if cost:
        head.append(f"{doc['prices']['currency']}/call min")
    rows = []
    for r in doc["ranking"]:
        c = cells[r["cell"]]
        lat, td = c["latency_ms"] or {}, c["turn_detection_ms"] or {}

        def f(v, pct=False, d=0):
            return "—" if v is None else (f"{v * 100:.0f} %" if pct else f"{v:.{d}f}")
        row = [("FAILED" if r["rank"] is None else f"{r['rank']}{'=' if r['tied_with_above'] else ''}"), r["cell"],
               f(lat.get("p50")), f(lat.get("p90")), f(lat.get("p99")), f(td.get("p50")), f(c["wer"], d=3),
               f(c["false_interruption_rate"], True), f(c["barge_in_success_rate"], True), str(c["turns"])]
        if cost:
            row.append(f((c["cost"] or {}).get("per_call_minute"), d=4))
        rows.append(row)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(head, widths))]
    lines += ["  ".join(x.rjust(w) for x, w in zip(r, widths)) for r in rows]
    lines.append("rank: by latency P50; '=' shares the rank above (difference within noise, 95 % bootstrap)")
    for c in doc["cells"]:
        for e in c["errors"]:
            lines.append(f"{c['name']}: {e.splitlines()[0]}")
    return "\n".join(lines)
