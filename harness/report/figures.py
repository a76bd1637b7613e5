"""The report's figures, as inline SVG strings (matplotlib, no files, no network).

Every figure takes one or more runs: with several, they are overlaid in the same axes so a
comparison reads at a glance. Dense data is thinned or rasterised so 100 000 turns stay small.
"""

from __future__ import annotations

import io

import numpy as np

from harness.metrics.catalog import STAGES
from harness.metrics.envelope import decode
from harness.report.data import RunData

BUDGET_MS = {"stt_final": (50, 100), "llm_ttft": (100, 200), "tts_ttfb": (50, 80), "transport": (20, 50)}
STAGE_LABELS = {"turn_detection": "turn detection", "stt_final": "STT final", "llm_ttft": "LLM TTFT",
                "tts_ttfb": "TTS first audio", "transport": "transport + rest"}
KINDS = ("utterance", "paused", "filler", "barge_in")
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f"]
MAX_LINE_POINTS = 2000
MAX_SCATTER_POINTS = 20000


def pyplot():
    """matplotlib's pyplot on the Agg backend, styled for the reports (SVG text kept as text)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "turnbench", "font.size": 9,
                         "axes.spines.top": False, "axes.spines.right": False})
    return plt


def to_svg(fig) -> str:
    """A figure as an inline `<svg>` element (closed afterwards)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", dpi=110)  # dpi: rasterised parts only
    pyplot().close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _cdf_points(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.sort(x)
    y = np.arange(1, x.size + 1) / x.size
    if x.size > MAX_LINE_POINTS:
        idx = np.unique(np.linspace(0, x.size - 1, MAX_LINE_POINTS).astype(int))
        x, y = x[idx], y[idx]
    return x, y


def latency_cdf(runs: list[RunData]) -> str:
    """Latency CDF per turn kind (one run) or per run (a comparison), with the 300 ms budget."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    series = ([(f"{r.label}", r.column("latency_ms")) for r in runs] if len(runs) > 1 else
              [("all turns", runs[0].column("latency_ms"))]
              + [(k, runs[0].column("latency_ms", k)) for k in KINDS])
    for i, (name, x) in enumerate(series):
        if x.size == 0:
            continue
        xs, ys = _cdf_points(x)
        ax.step(xs, ys, where="post", label=f"{name} (n={x.size})", color=COLORS[i % len(COLORS)],
                lw=2 if i == 0 or len(runs) > 1 else 1.2)
    ax.axvline(300, color="#999", ls="--", lw=1)
    ax.text(300, 0.02, " 300 ms budget", color="#666")
    for q in (0.5, 0.9, 0.99):
        ax.axhline(q, color="#ddd", lw=0.8, zorder=0)
    ax.set_xlabel("response latency (EOS → first audible agent audio), ms")
    ax.set_ylabel("fraction of turns")
    ax.set_ylim(0, 1.01)
    ax.legend(loc="lower right", fontsize=8)
    return to_svg(fig)


def latency_histogram(runs: list[RunData]) -> str:
    """Latency histogram, stacked by turn kind (one run) or overlaid per run."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.2))
    allx = np.concatenate([r.column("latency_ms") for r in runs] or [np.zeros(0)])
    if allx.size:
        hi = float(np.percentile(allx, 99.5)) * 1.05 + 1
        bins = np.linspace(max(0.0, float(allx.min()) * 0.95), hi, 50)
        if len(runs) > 1:
            for i, r in enumerate(runs):
                ax.hist(np.clip(r.column("latency_ms"), None, hi), bins=bins, histtype="step", lw=1.8,
                        color=COLORS[i % len(COLORS)], label=r.label)
        else:
            data = [(k, runs[0].column("latency_ms", k)) for k in KINDS]
            data = [(k, np.clip(x, None, hi)) for k, x in data if x.size]
            ax.hist([x for _, x in data], bins=bins, stacked=True, label=[k for k, _ in data],
                    color=COLORS[1 : 1 + len(data)])
        ax.axvline(300, color="#999", ls="--", lw=1)
        ax.legend(fontsize=8)
    ax.set_xlabel("response latency, ms (last bin holds everything above P99.5)")
    ax.set_ylabel("turns")
    return to_svg(fig)


def stage_waterfall(runs: list[RunData]) -> str | None:
    """Where the time goes: each stage's mean over the turns with a stage breakdown, laid end to
    end; the stages are consecutive intervals, so the bar ends at those turns' mean latency."""
    rows = []
    for r in runs:
        staged = [t for t in r.turns if t.get("stages_ms") and t.get("latency_ms") is not None]
        if not staged:
            continue
        vals = [(k, float(np.mean([t["stages_ms"].get(k) or 0.0 for t in staged]))) for k in STAGES]
        rows.append((r.label, vals, float(np.mean([t["latency_ms"] for t in staged]))))
    if not rows:
        return None
    return stage_bars(rows, "ms after end of speech (mean per stage over turns with a trace; | = their mean latency)",
                       budget=True)


def turn_waterfall(run: RunData, most: int = 20) -> str | None:
    """The same, turn by turn, for the run's slowest turns with a stage breakdown: each bar sums
    to that turn's latency (a stage whose event never came is merged into the next, as named)."""
    staged = sorted((t for t in run.turns if t.get("stages_ms") and t.get("latency_ms") is not None),
                    key=lambda t: -t["latency_ms"])[:most]
    if not staged:
        return None
    rows = []
    for t in staged:
        merged = t.get("stages_merged") or {}
        note = "".join(f" ({'+'.join(v)}→{k})" for k, v in merged.items())
        rows.append((f"{t['call_id']} turn {t['turn']}{note}",
                     [(k, t["stages_ms"].get(k) or 0.0) for k in STAGES], t["latency_ms"]))
    return stage_bars(rows, "ms after end of speech (| = the turn's latency)", budget=False)


def stage_bars(rows: list[tuple[str, list[tuple[str, float]], float | None]], xlabel: str, budget: bool) -> str:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.9 + (0.7 if budget else 0.32) * len(rows)))
    palette = {"turn_detection": "#bbbbbb", "stt_final": COLORS[0], "llm_ttft": COLORS[1],
               "tts_ttfb": COLORS[2], "transport": COLORS[3]}
    seen: set[str] = set()
    for y, (_label, vals, total) in enumerate(rows):
        left = 0.0
        for k, v in vals:
            ax.barh(y, v, left=left, color=palette[k], edgecolor="white",
                    label=STAGE_LABELS[k] if k not in seen else None)
            seen.add(k)
            if v >= 40 and budget:
                ax.text(left + v / 2, y, f"{v:.0f}", ha="center", va="center", fontsize=7, color="white")
            left += v
        if total is not None:
            ax.plot([total], [y], marker="|", color="black", ms=18 if budget else 9)
    if budget:
        lo_total = sum(lo for lo, _ in BUDGET_MS.values())
        hi_total = sum(hi for _, hi in BUDGET_MS.values())
        ax.axvspan(lo_total, hi_total, color="#2ca02c", alpha=0.08, label=f"budget {lo_total}–{hi_total} ms")
    ax.axvline(300, color="#999", ls="--", lw=1)
    ax.set_yticks(range(len(rows)), [r[0] for r in rows], fontsize=None if budget else 7)
    if not budget:
        ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    if budget:  # just below the figure (and its x label), however many rows it has
        ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, 0.0), bbox_transform=fig.transFigure)
    else:
        ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.08))
    return to_svg(fig)


def call_timeline(run: RunData, call_id: str, timeline: dict | None, why: str) -> str:
    """Caller (up) and agent (down, as heard) on one time axis, with the turn markers."""
    plt = pyplot()
    turns = [t for t in run.turns if t["call_id"] == call_id]
    fig, ax = plt.subplots(figsize=(9, 2.4))
    if timeline:
        step = timeline.get("step_ms", 10) / 1000.0
        cp = decode(timeline.get("caller_peaks", ""))
        ax.fill_between(np.arange(cp.size) * step, 0, cp, color=COLORS[0], lw=0, step="post", label="caller",
                        rasterized=True)
        ap = decode(timeline.get("agent_peaks", ""))
        if ap.size and timeline.get("agent_origin_s") is not None:
            t0 = float(timeline["agent_origin_s"])
            ax.fill_between(t0 + np.arange(ap.size) * step, 0, -ap, color=COLORS[4], lw=0, step="post",
                            label="agent (as heard)", rasterized=True)
    else:
        ax.text(0.5, 0.5, "no waveform recorded for this call (timelines.jsonl missing)", transform=ax.transAxes,
                ha="center", color="#666")
    for t in turns:
        if t.get("eos_s") is not None:
            ax.axvline(t["eos_s"], color="black", ls="--", lw=0.8)
            ax.text(t["eos_s"], 1.02, f"EOS {t['turn']}", fontsize=6, ha="center")
        if t.get("response_onset_s") is not None:
            ax.axvline(t["response_onset_s"], color="#2ca02c", lw=1.2)
            if t.get("latency_ms") is not None:
                ax.text(t["response_onset_s"], -1.12, f"{t['latency_ms']:.0f} ms", fontsize=6, ha="center",
                        color="#2ca02c")
        _fillers_and_dead_air(ax, t)
        start = t.get("speech_start_s")
        if t.get("false_interruption") and start is not None and t.get("false_interruption_at_ms") is not None:
            x = start + t["false_interruption_at_ms"] / 1000
            ax.plot([x], [-0.5], marker="v", color="red", ms=8)
            ax.text(x, -0.75, "false interruption", color="red", fontsize=6, ha="center")
        if t.get("kind") == "barge_in" and start is not None:
            ax.plot([start], [0.9], marker="v", color="#9467bd", ms=7)
            ax.text(start, 0.95, "barge-in", color="#9467bd", fontsize=6, ha="left")
            if t.get("barge_in_stop_ms") is not None:
                stop = start + t["barge_in_stop_ms"] / 1000
                ax.plot([stop], [-0.9], marker="^", color="#9467bd" if t.get("barge_in_success") else "red", ms=7)
                ax.text(stop, -1.0, f"stop {t['barge_in_stop_ms']:.0f} ms", fontsize=6, ha="left",
                        color="#9467bd" if t.get("barge_in_success") else "red")
    ax.set_ylim(-1.15, 1.1)
    ax.set_yticks([-0.5, 0.5], ["agent", "caller"])
    ax.set_xlabel("seconds from the call's first frame")
    ax.set_title(f"{run.label} · call {call_id} — {why}", fontsize=8, loc="left")
    if timeline:
        ax.legend(fontsize=7, loc="upper right")
    return to_svg(fig)


def _fillers_and_dead_air(ax, t: dict) -> None:
    """A turn's filler (first audio → first content word, where the agent marked content) and
    its dead air (the longest silence inside the answer), on the agent's half of the axis."""
    onset, eos, content_ms = t.get("response_onset_s"), t.get("eos_s"), t.get("first_content_ms")
    if onset is not None and eos is not None and content_ms is not None:
        content = eos + content_ms / 1000
        if content - onset > 0.05:
            ax.axvspan(onset, content, ymin=0.0, ymax=0.48, color="#ff7f0e", alpha=0.18, lw=0)
            ax.text((onset + content) / 2, -0.15, "filler", fontsize=6, ha="center", color="#ff7f0e")
            ax.plot([content], [-0.1], marker="|", color="#ff7f0e", ms=9)
            ax.text(content, -0.05, f"content {content_ms:.0f} ms", fontsize=6, ha="left", color="#ff7f0e")
    gap_at, gap_ms = t.get("dead_air_start_s"), t.get("dead_air_ms")
    if gap_at is not None and gap_ms:
        ax.axvspan(gap_at, gap_at + gap_ms / 1000, ymin=0.0, ymax=0.48, color="red", alpha=0.15, lw=0)
        ax.text(gap_at + gap_ms / 2000, -0.3, f"dead air {gap_ms:.0f} ms", fontsize=6, ha="center", color="red")


def latency_over_time(runs: list[RunData]) -> str | None:
    """Latency against the run's clock (call start + EOS): binned P50/P99 lines over the samples."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.0))
    drawn = False
    for i, r in enumerate(runs):
        pts = np.array([(t["call_started_s"] + t["eos_s"], t["latency_ms"]) for t in r.turns
                        if t.get("latency_ms") is not None and t.get("call_started_s") is not None
                        and t.get("eos_s") is not None], dtype=np.float64).reshape(-1, 2)
        if pts.shape[0] == 0:
            continue
        drawn = True
        c = COLORS[i % len(COLORS)]
        show = pts if pts.shape[0] <= MAX_SCATTER_POINTS else pts[np.random.default_rng(0).choice(
            pts.shape[0], MAX_SCATTER_POINTS, replace=False)]
        dense = pts.shape[0] > 1000
        ax.scatter(show[:, 0], show[:, 1], s=4 if dense else 14, alpha=0.35 if dense else 0.8, color=c,
                   rasterized=True, lw=0,
                   label=f"{r.label} turns" if len(runs) > 1 else "turns")
        if pts.shape[0] >= 40:
            edges = np.linspace(pts[:, 0].min(), pts[:, 0].max() + 1e-9, min(50, pts.shape[0] // 20) + 1)
            which = np.digitize(pts[:, 0], edges) - 1
            mids, p50, p99 = [], [], []
            for b in range(len(edges) - 1):
                sel = pts[which == b, 1]
                if sel.size >= 5:
                    mids.append((edges[b] + edges[b + 1]) / 2)
                    p50.append(np.percentile(sel, 50))
                    p99.append(np.percentile(sel, 99))
            ax.plot(mids, p50, color=c, lw=1.5, label="P50 per bin")
            ax.plot(mids, p99, color=c, lw=1.0, ls=":", label="P99 per bin")
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel("seconds since the run started")
    ax.set_ylabel("latency, ms")
    ax.legend(fontsize=7)
    return to_svg(fig)


def latency_vs_concurrency(runs: list[RunData]) -> str | None:
    """Latency by calls in flight, only where concurrency varied."""
    groups: list[tuple[str, dict[int, list[float]]]] = []
    for r in runs:
        by: dict[int, list[float]] = {}
        for t in r.turns:
            if t.get("latency_ms") is not None and t.get("calls_in_flight") is not None:
                by.setdefault(int(t["calls_in_flight"]), []).append(t["latency_ms"])
        groups.append((r.label, by))
    if all(len(by) < 2 for _, by in groups):
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.0))
    for i, (label, by) in enumerate(groups):
        ks = sorted(by)
        ax.plot(ks, [np.percentile(by[k], 50) for k in ks], marker="o", color=COLORS[i % len(COLORS)],
                label=f"{label} P50")
        ax.plot(ks, [np.percentile(by[k], 99) for k in ks], marker="x", ls=":", color=COLORS[i % len(COLORS)],
                label=f"{label} P99")
    ax.set_xlabel("calls in flight when the call started")
    ax.set_ylabel("latency, ms")
    ax.legend(fontsize=7)
    return to_svg(fig)
