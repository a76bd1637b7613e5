"""The numbers a report leads with, each against its threshold (from the run) or the default budget."""

from __future__ import annotations

from dataclasses import dataclass

from harness.thresholds import OPS, ThresholdError, parse_threshold

# Used where the run set no threshold for the metric: the 300 ms conversational budget and the
# rates a production agent is expected to meet.
DEFAULT_TARGETS = {
    "latency_ms.p50": "latency_ms.p50<=300", "latency_ms.p90": "latency_ms.p90<=300",
    "latency_ms.p99": "latency_ms.p99<=300",
    "false_interruption_rate": "false_interruption_rate<=0.05",
    "false_interruption_rate_paused": "false_interruption_rate_paused<=0.05",
    "barge_in_success_rate": "barge_in_success_rate>=0.95", "barge_in_stop_ms.p50": "barge_in_stop_ms.p50<=300",
    "backchannel_success_rate": "backchannel_success_rate>=0.9",
}
ROWS = (
    ("latency_ms.p50", "Response latency P50", "ms"), ("latency_ms.p90", "Response latency P90", "ms"),
    ("latency_ms.p99", "Response latency P99", "ms"),
    ("false_interruption_rate", "False interruptions (all turns)", "rate"),
    ("false_interruption_rate_paused", "False interruptions (paused turns)", "rate"),
    ("barge_in_success_rate", "Barge-in success", "rate"), ("barge_in_stop_ms.p50", "Barge-in stop time P50", "ms"),
    ("backchannel_success_rate", "Backchannel success", "rate"),
    ("turn_detection_ms.p50", "Turn-detection latency P50", "ms"), ("wer", "WER (agent transcript)", "rate"),
)


@dataclass
class HeadlineRow:
    key: str
    label: str
    value: str
    ci: str
    n: str
    target: str
    source: str
    """`threshold` (set for the run), `budget` (default target) or empty."""
    status: str
    """`pass`, `fail` or `none`."""


def _get(summary: dict, path: str):
    node = summary
    for k in path.split("."):
        node = node.get(k) if isinstance(node, dict) else None
    return node


def _fmt(v, unit: str) -> str:
    if v is None:
        return "—"
    return f"{v:.0f} ms" if unit == "ms" else (f"{100 * v:.1f} %" if unit == "rate" else f"{v:g}")


def headline(summary: dict) -> list[HeadlineRow]:
    """One row per headline metric, with CI, sample count and pass/fail."""
    run_thresholds = {}
    for t in summary.get("thresholds") or []:
        try:
            th = parse_threshold(t["expr"])
        except (ThresholdError, KeyError):
            continue
        run_thresholds[".".join(th.path)] = th
    rows = []
    for key, label, unit in ROWS:
        value = _get(summary, key)
        head, _, stat = key.partition(".")
        if stat:
            node = summary.get(head) or {}
            ci = (node.get("ci95") or {}).get(stat)
            n = node.get("n")
            low = stat == "p99" and node.get("p99_low_n")
        else:
            ci, n, low = summary.get(f"{key}_ci95"), summary.get(f"{key}_n"), False
        th, source = run_thresholds.get(key), "threshold"
        if th is None and key in DEFAULT_TARGETS:
            th, source = parse_threshold(DEFAULT_TARGETS[key]), "budget"
        status = "none"
        if th is not None and isinstance(value, (int, float)):
            status = "pass" if OPS[th.op](value, th.value) else "fail"
        target = f"{th.op} {_fmt(th.value, unit)}" if th is not None else ""
        rows.append(HeadlineRow(key, label, _fmt(value, unit),
                                f"[{_fmt(ci[0], unit)}, {_fmt(ci[1], unit)}]" if ci else "",
                                (f"{n}" + (" (P99 from < 100 samples)" if low else "")) if n is not None else "",
                                target, source if th is not None else "", status))
    return rows
