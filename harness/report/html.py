"""`report.html`: one self-contained file (inline SVG, inline CSS, no scripts, no fetches)."""

from __future__ import annotations

import html as _html
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import harness
from harness.metrics.catalog import STAGES
from harness.metrics.compare import bootstrap_delta, delta_metrics, parse_metric
from harness.report import figures
from harness.report.data import RunData
from harness.report.headline import headline

TEMPLATE = Path(__file__).with_name("report.html.j2")
DEFAULT_MAX_TIMELINES = 12
STAGE_ROWS = STAGES


@dataclass
class Figure:
    id: str
    title: str
    svg: str
    caption: str = ""


def pick_timelines(run: RunData, slowest: int = 3) -> list[tuple[str, str]]:
    """(call_id, why) for the slowest calls, then every false interruption and failed barge-in."""
    picks: dict[str, list[str]] = {}
    lat = sorted((t for t in run.turns if t.get("latency_ms") is not None), key=lambda t: -t["latency_ms"])
    for t in lat:
        if len(picks) >= slowest:
            break
        if t["call_id"] not in picks:  # a call is drawn once, for its slowest turn
            picks[t["call_id"]] = [f"slowest turn {t['turn']} ({t['latency_ms']:.0f} ms)"]
    for t in run.turns:
        if t.get("false_interruption"):
            picks.setdefault(t["call_id"], []).append(f"false interruption in turn {t['turn']}")
        if t.get("barge_in_success") is False:
            picks.setdefault(t["call_id"], []).append(f"failed barge-in in turn {t['turn']}")
    return [(c, "; ".join(dict.fromkeys(w))) for c, w in picks.items()]


def _stage_table(runs: list[RunData]) -> list[dict]:
    rows = []
    for key in STAGE_ROWS:
        lo_hi = figures.BUDGET_MS.get(key)
        cells = []
        for r in runs:
            node = ((r.summary.get("stages_ms") or {}).get(key)
                    or (r.summary.get("turn_detection_ms") if key == "turn_detection" else None) or {})
            p50 = node.get("p50")
            status = "none" if lo_hi is None or p50 is None else ("pass" if p50 <= lo_hi[1] else "fail")
            cells.append({"p50": "—" if p50 is None else f"{p50:.0f}",
                          "p90": "—" if node.get("p90") is None else f"{node['p90']:.0f}", "status": status})
        rows.append({"stage": figures.STAGE_LABELS[key],
                     "budget": f"{lo_hi[0]}–{lo_hi[1]} ms" if lo_hi else "not in the budget table", "cells": cells})
    return rows


def _delta_rows(runs: list[RunData]) -> list[dict]:
    base = runs[0]
    out = []
    for other in runs[1:]:
        for name in delta_metrics():
            m = parse_metric(name)
            d = bootstrap_delta(m, m.samples(base.turns), m.samples(other.turns), seed=7)
            if d.a is None and d.b is None:
                continue
            scale = 100.0 if m.stat == "rate" else 1.0
            unit = " pp" if m.stat == "rate" else ("" if name == "wer" else " ms")
            fmt = (lambda v: "—" if v is None else f"{v * scale:.3g}" if name == "wer" else f"{v * scale:.1f}")  # noqa: B023 (used in this pass)
            out.append({"against": other.label, "metric": name, "a": fmt(d.a), "b": fmt(d.b),
                        "diff": "—" if d.diff is None else f"{d.diff * scale:+.1f}{unit}",
                        "ci": "" if d.ci95 is None else f"[{d.ci95[0] * scale:+.1f}, {d.ci95[1] * scale:+.1f}]",
                        "n": f"{d.n_a} / {d.n_b}",
                        "verdict": ("—" if d.diff is None else "not significant" if not d.significant
                                    else "worse" if d.worse else "better"),
                        "cls": "" if not d.significant else ("fail" if d.worse else "pass")})
    return out


def _meta(r: RunData) -> list[tuple[str, str]]:
    run, s = r.run, r.summary
    agent = run.get("agent") or {}
    providers = s.get("providers") or agent.get("providers") or {}
    prov = ", ".join(f"{k}: {v.get('name')}{' (SIMULATED)' if v.get('simulated') else ''}"
                     for k, v in providers.items()) if isinstance(providers, dict) else ""
    m = run.get("machine") or {}
    scen = run.get("scenario") or {}
    return [("scenario", f"{scen.get('name', s.get('scenario', '?'))} ({scen.get('path', '')})"),
            ("scenario sha256", str(scen.get("sha256", "—"))),
            ("fixtures digest", str((run.get("fixtures") or {}).get("digest", "—"))),
            ("target", f"{s.get('target', run.get('target', '?'))} {agent.get('url', '')}".strip()),
            ("agent options", str(agent.get("args") or "—")), ("providers", prov or "—"),
            ("transport", str(s.get("transport", run.get("transport", "?")))),
            ("impairment", (run.get("impairment") or {}).get("description", "none")
             if isinstance(run.get("impairment"), dict) else str(run.get("impairment") or "none")),
            ("calls × concurrency", f"{s.get('calls')} × {run.get('concurrency', '?')}"),
            ("turns", str(s.get("turns"))), ("seed", str(run.get("seed", "—"))),
            ("started / ended", f"{run.get('started_at', '?')} / {run.get('ended_at', '?')}"),
            ("status", str(run.get("status", "?"))),
            ("turnbench", f"{run.get('turnbench_version', '?')} (git {str(run.get('git_sha') or '—')[:12]})"),
            ("machine", ", ".join(f"{k} {v}" for k, v in m.items()) or "—")]


def _health(r: RunData) -> dict:
    h = r.summary.get("harness") or {}
    return {"label": r.label, "overloaded": bool(h.get("overloaded")),
            "items": [("send lateness P50 / P99", f"{h.get('send_lateness_ms_p50', '—')} / {h.get('send_lateness_ms_p99', '—')} ms"),
                      ("event-loop lag P99", f"{h.get('loop_lag_ms_p99', '—')} ms"),
                      ("CPU steal", f"{h.get('cpu_steal_pct', '—')} %"), ("frames sent", str(h.get("frames", "—")))],
            "budget": h.get("budget") or {}}


def build_report(runs: list[RunData], max_timelines: int = DEFAULT_MAX_TIMELINES) -> str:
    """The HTML of a report over one run, or a comparison of several (the first is the reference)."""
    import jinja2

    figs: list[Figure] = []
    if any(r.has_turns for r in runs):
        figs.append(Figure("latency-cdf", "Latency CDF", figures.latency_cdf(runs),
                           "by turn kind" if len(runs) == 1 else "one line per run"))
        figs.append(Figure("latency-histogram", "Latency histogram", figures.latency_histogram(runs)))
    wf = figures.stage_waterfall(runs)
    if wf:
        figs.append(Figure("stage-waterfall", "Where the time goes", wf,
                           "mean of each stage (consecutive intervals from the agent's trace, EOS to heard), "
                           "laid end to end; the band is the budget table"))
    tw = figures.turn_waterfall(runs[0])
    if tw:
        figs.append(Figure("turn-waterfall", f"Where the time goes, turn by turn ({runs[0].label})", tw,
                           "the slowest turns with a trace; each bar is that turn's latency, stage by stage"))
    ot = figures.latency_over_time(runs)
    if ot:
        figs.append(Figure("latency-over-time", "Latency over the run", ot))
    vc = figures.latency_vs_concurrency(runs)
    if vc:
        figs.append(Figure("latency-vs-concurrency", "Latency against concurrency", vc))
    timelines, left_out = [], 0
    for r in runs:
        picks = pick_timelines(r)
        shown = picks[: max(0, max_timelines - len(timelines))]
        left_out += len(picks) - len(shown)
        rows = r.timelines({c for c, _ in shown})
        for c, why in shown:
            timelines.append(Figure(f"timeline-{r.label}-{c}", f"{r.label} · {c}",
                                    figures.call_timeline(r, c, rows.get(c), why)))
    hashes = {(str((r.run.get("scenario") or {}).get("sha256")), str((r.run.get("fixtures") or {}).get("digest")))
              for r in runs}
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    tpl = env.from_string(TEMPLATE.read_text())
    heads = [headline(r.summary) for r in runs]
    return tpl.render(
        title=("turnbench: " + runs[0].label) if len(runs) == 1 else f"turnbench: {len(runs)} runs compared",
        generated=datetime.now(UTC).isoformat(timespec="seconds"),
        version=harness.__version__, python=platform.python_version(), runs=runs,
        head_rows=[[heads[i][j] for i in range(len(runs))] for j in range(len(heads[0]))],
        notes=[(r.label, n) for r in runs for n in r.summary.get("notes") or []],
        simulated=[(r.label, ", ".join(r.summary.get("simulated_providers") or [])) for r in runs
                   if r.summary.get("simulated_providers")],
        thresholds=[(r.label, t) for r in runs for t in r.summary.get("thresholds") or []],
        figures=figs, timelines=timelines, timelines_left_out=left_out, max_timelines=max_timelines,
        stage_rows=_stage_table(runs), deltas=_delta_rows(runs) if len(runs) > 1 else [],
        hash_mismatch=len(hashes) > 1, health=[_health(r) for r in runs], meta=[(r.label, _meta(r)) for r in runs],
        esc=_html.escape)


def write_html_report(runs: list[RunData], out: Path, max_timelines: int = DEFAULT_MAX_TIMELINES) -> Path:
    """Render and write atomically."""
    text = build_report(runs, max_timelines)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(out)
    return out
