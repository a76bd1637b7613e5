"""The numbers a report leads with, each against its threshold (from the run) or the default budget."""

from __future__ import annotations

from dataclasses import dataclass

from harness.metrics import catalog
from harness.metrics.catalog import HEADLINE_LABELS
from harness.thresholds import OPS, ThresholdError, parse_threshold


def default_targets() -> dict[str, str]:
    """Used where the run set no threshold for the metric: the 300 ms conversational budget and the
    rates a production agent is expected to meet (each metric's `budget` in the catalogue)."""
    return {m.key(stat): f"{m.key(stat)}{target}" for m in catalog.CATALOG for stat, target in (m.budget or {}).items()}


def rows() -> tuple[tuple[str, str, str], ...]:
    """(key, label, unit) of every headline row, in the catalogue's order."""
    return tuple((m.key(stat), HEADLINE_LABELS.get(m.key(stat), m.label.strip()),
                  "rate" if m.unit == "ratio" else m.unit) for m in catalog.CATALOG for stat in m.headline)


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
    out = []
    targets = default_targets()
    for key, label, unit in rows():
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
        if th is None and key in targets:
            th, source = parse_threshold(targets[key]), "budget"
        status = "none"
        if th is not None and isinstance(value, (int, float)):
            status = "pass" if OPS[th.op](value, th.value) else "fail"
        target = f"{th.op} {_fmt(th.value, unit)}" if th is not None else ""
        out.append(HeadlineRow(key, label, _fmt(value, unit),
                                f"[{_fmt(ci[0], unit)}, {_fmt(ci[1], unit)}]" if ci else "",
                                (f"{n}" + (" (P99 from < 100 samples)" if low else "")) if n is not None else "",
                               target, source if th is not None else "", status))
    return out
