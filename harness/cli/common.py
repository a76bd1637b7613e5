"""Shared CLI pieces: exit codes, error reporting, the summary table."""

from __future__ import annotations

import math
import sys
from typing import NoReturn

import click

from harness.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_TARGET, EXIT_USAGE  # noqa: F401 (re-exported)


class Finite(click.FloatRange):
    """A float option that must be finite (`nan` and `inf` pass a plain FloatRange: every
    comparison with nan is false) and within its documented range."""

    name = "finite float"

    def convert(self, value, param, ctx):
        v = super().convert(value, param, ctx)
        if not math.isfinite(v):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return v


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print a one-line error to stderr and exit with `code`."""
    click.echo(f"turnbench: error: {message}", err=True)
    sys.exit(code)


def _fmt(v, unit: str = "") -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.1f}{unit}" if unit == " ms" else f"{v:.3g}{unit}"
    return f"{v}{unit}"


def _pct(summary: dict, name: str) -> str:
    v = summary.get(name)
    if v is None:
        return "—"
    ci = summary.get(f"{name}_ci95")
    n = summary.get(f"{name}_n")
    return f"{v * 100:.1f} %  [{ci[0] * 100:.1f}, {ci[1] * 100:.1f}]  n={n}"


def _dist(d: dict | None) -> str:
    if not d:
        return "—"
    ci = d["ci95"]
    flag = "  (P99 from < 100 samples)" if d.get("p99_low_n") else ""
    return (f"P50 {d['p50']:.1f} [{ci['p50'][0]:.1f}, {ci['p50'][1]:.1f}]  P90 {d['p90']:.1f}  "
            f"P99 {d['p99']:.1f} [{ci['p99'][0]:.1f}, {ci['p99'][1]:.1f}]  n={d['n']}{flag}")


def summary_table(s: dict) -> str:
    """The human-readable headline of a summary.json."""
    from harness.metrics import catalog
    show = {"percentiles": lambda m: _dist(s.get(m.name)), "rate": lambda m: _pct(s, m.name),
            "mean": lambda m: _fmt(s.get(m.name))}
    rows = [(m.label, show[m.aggregate](m)) for m in catalog.CATALOG if m.in_table]
    if s.get("stages_ms"):
        for k, v in s["stages_ms"].items():
            rows.append((f"stage {k} (ms)", _dist(v)))
    if s.get("setup_ms"):
        rows.append(("call setup (ms)", _dist(s["setup_ms"]) + "  (not in any latency)"))
    h = s.get("harness", {})
    rows.append(("harness", f"send lateness P50 {_fmt(h.get('send_lateness_ms_p50'), ' ms')}, "
                            f"P99 {_fmt(h.get('send_lateness_ms_p99'), ' ms')}; loop lag P99 "
                            f"{_fmt(h.get('loop_lag_ms_p99'), ' ms')}; CPU steal {_fmt(h.get('cpu_steal_pct'), ' %')}"
                            + ("  OVERLOADED" if h.get("overloaded") else "")))
    width = max(len(r[0]) for r in rows)
    head = f"{s.get('scenario')} → {s.get('target')} over {s.get('transport')}: {s.get('calls')} calls, {s.get('turns')} turns"
    if s.get("impairment"):
        head += f" (network: {s['impairment'].get('description', s['impairment'].get('name'))})"
    if s.get("errors"):
        head += "; errors: " + ", ".join(f"{k} ×{v}" for k, v in s["errors"].items())
    lines = [head] + [f"  {k.ljust(width)}  {v}" for k, v in rows]
    lines += [f"  note: {n}" for n in s.get("notes", [])]
    return "\n".join(lines)
