"""`turnbench sweep`: steps of rising concurrency back to back, and the knee of the curve.

The knee is the highest concurrency whose P99 latency stays within the threshold. A step in
which the harness fell behind its own schedule (send lateness p99 above 5 ms, event-loop lag
p99 above 10 ms) measured the harness, not the agent: it is reported, flagged, and never counts
toward capacity.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from harness.metrics import catalog
from harness.metrics.compare import parse_metric

SWEEP_SCHEMA = "turnbench.sweep/1"


def parse_levels(text: str) -> list[int]:
    """"1,2,4,8" → [1, 2, 4, 8] (increasing, positive), or ValueError saying which item is wrong."""
    out: list[int] = []
    for i, part in enumerate(text.split(",")):
        try:
            n = int(part.strip())
        except ValueError:
            raise ValueError(f"--concurrency {text!r}: item {i + 1} ({part.strip()!r}) is not a whole number") from None
        if n < 1 or (out and n <= out[-1]):
            raise ValueError(f"--concurrency {text!r}: levels must be positive and increasing (item {i + 1}: {n})")
        out.append(n)
    return out


def doubling(up_to: int) -> list[int]:
    """1, 2, 4, … up to `up_to` (for --until-p99 without explicit levels)."""
    out, n = [], 1
    while n <= up_to:
        out.append(n)
        n *= 2
    return out


@dataclass
class StepResult:
    """One concurrency level, from its summary.json."""

    concurrency: int
    calls: int
    turns: int
    folder: str
    latency_p50_ms: float | None
    latency_p90_ms: float | None
    latency_p99_ms: float | None
    p99_low_n: bool
    false_interruption_rate: float | None
    barge_in_success_rate: float | None
    no_response_rate: float | None
    error_rate: float
    send_lateness_ms_p99: float | None
    loop_lag_ms_p99: float | None
    overloaded: bool
    counted: bool
    """False when the harness was saturated: such a step says nothing about the agent's capacity."""
    headline: dict = field(default_factory=dict)
    """Every headline statistic of the metric catalogue at this step (`latency_ms.p99`, rates, …)."""

    @classmethod
    def from_summary(cls, concurrency: int, folder: str, s: dict) -> StepResult:
        lat = s.get("latency_ms") or {}
        h = s.get("harness") or {}
        errors = sum((s.get("errors") or {}).values())
        return cls(concurrency, s.get("calls", 0), s.get("turns", 0), folder, lat.get("p50"), lat.get("p90"),
                   lat.get("p99"), bool(lat.get("p99_low_n")), s.get("false_interruption_rate"),
                   s.get("barge_in_success_rate"), s.get("no_response_rate"),
                   round(errors / s["calls"], 4) if s.get("calls") else 0.0,
                   h.get("send_lateness_ms_p99"), h.get("loop_lag_ms_p99"), bool(h.get("overloaded")),
                   counted=not h.get("overloaded"), headline=headline_values(s))


def headline_values(summary: dict) -> dict:
    """{`latency_ms.p99`: value, `barge_in_success_rate`: value, …} for the catalogue's headline."""
    keys = (m.key(stat) for m in catalog.CATALOG for stat in m.headline)
    return {key: parse_metric(key).from_summary(summary) for key in keys}


def within(step: StepResult, threshold_ms: float) -> bool:
    return step.latency_p99_ms is not None and step.latency_p99_ms <= threshold_ms and step.error_rate == 0


def knee(steps: list[StepResult], threshold_ms: float) -> dict:
    """The highest counted concurrency within the threshold, below the first counted step that is not."""
    best, first_over = None, None
    for st in steps:
        if not st.counted:
            continue
        if within(st, threshold_ms):
            if first_over is None:
                best = st.concurrency
        elif first_over is None:
            first_over = st.concurrency
    skipped = [st.concurrency for st in steps if not st.counted]
    if best is None:
        why = "no counted step kept P99 within the threshold"
    elif first_over is None:
        why = "every counted step kept P99 within the threshold: capacity is at least this (try higher levels)"
    else:
        why = f"P99 first exceeded {threshold_ms:g} ms at concurrency {first_over}"
    return {"threshold_p99_ms": threshold_ms, "concurrency": best, "first_over": first_over,
            "not_counted": skipped, "why": why}


def sweep_document(scenario: str, target: str, transport: str, steps: list[StepResult], threshold_ms: float,
                   meta: dict) -> dict:
    return {"schema": SWEEP_SCHEMA, "scenario": scenario, "target": target, "transport": transport,
            "steps": [asdict(s) for s in steps], "knee": knee(steps, threshold_ms), **meta}


def sweep_table(doc: dict) -> str:
    head = ["concurrency", "calls", "P50 ms", "P90 ms", "P99 ms", "false int.", "barge-in", "errors/call",
            "lateness p99", "counted"]
    rows = []
    for s in doc["steps"]:
        def f(v, pct=False):
            return "—" if v is None else (f"{v * 100:.1f} %" if pct else f"{v:.0f}")
        rows.append([str(s["concurrency"]), str(s["calls"]), f(s["latency_p50_ms"]), f(s["latency_p90_ms"]),
                     f(s["latency_p99_ms"]) + ("*" if s["p99_low_n"] else ""), f(s["false_interruption_rate"], True),
                     f(s["barge_in_success_rate"], True), f"{s['error_rate']:.2f}",
                     "—" if s["send_lateness_ms_p99"] is None else f"{s['send_lateness_ms_p99']:.1f} ms",
                     "yes" if s["counted"] else "NO (harness overloaded)"])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)] if rows else [len(h) for h in head]
    lines = ["  ".join(h.rjust(w) for h, w in zip(head, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
    k = doc["knee"]
    lines.append(f"knee: {k['concurrency'] if k['concurrency'] is not None else 'none'} concurrent calls "
                 f"(P99 ≤ {k['threshold_p99_ms']:g} ms): {k['why']}" + ("  (* P99 from < 100 samples)"
                                                                          if any(s["p99_low_n"] for s in doc["steps"]) else ""))
    return "\n".join(lines)
