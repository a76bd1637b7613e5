"""The matrix's page: latency per cell with intervals, where the time goes, quality, cost,
the pairwise differences and the ranking, all from matrix.json (self-contained, no network)."""

from __future__ import annotations

from pathlib import Path

from harness.metrics.catalog import STAGES
from harness.report.figures import COLORS, pyplot, stage_bars, to_svg

TEMPLATE = Path(__file__).with_name("matrix.html.j2")


def latency_figure(doc: dict) -> str | None:
    """P50, P90 and P99 per cell, each with its 95 % bootstrap interval as an error bar."""
    cells = [c for c in doc["cells"] if c["latency_ms"]]
    if not cells:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.9 + 0.45 * len(cells)))
    ys = range(len(cells))
    for i, q in enumerate(("p50", "p90", "p99")):
        vals = [c["latency_ms"][q] for c in cells]
        lo = [v - c["latency_ms"]["ci95"][q][0] for v, c in zip(vals, cells)]
        hi = [c["latency_ms"]["ci95"][q][1] - v for v, c in zip(vals, cells)]
        ax.errorbar(vals, [y + (i - 1) * 0.2 for y in ys], xerr=[lo, hi], fmt="o", color=COLORS[i], capsize=3,
                    label=q.upper())
    ax.axvline(300, color="#999", ls="--", lw=1, label="300 ms budget")
    ax.set_yticks(list(ys), [c["name"] for c in cells])
    ax.invert_yaxis()
    ax.set_xlabel("end of speech → first audio, ms (bars: 95 % bootstrap intervals)")
    ax.legend(fontsize=7, loc="lower right")
    return to_svg(fig)


def stage_figure(doc: dict) -> str | None:
    """Each cell's mean per stage laid end to end (the stages sum to each turn's latency)."""
    rows = []
    for c in doc["cells"]:
        st = c.get("stages_ms")
        if not st:
            continue
        vals = [(k, (st.get(k) or {}).get("mean") or 0.0) for k in STAGES]
        rows.append((c["name"], vals, sum(v for _, v in vals)))
    if not rows:
        return None
    return stage_bars(rows, "ms after end of speech (mean per stage; | = their sum, the mean latency)", budget=True)


def matrix_html(doc: dict) -> str:
    import jinja2
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["ms"] = lambda v: "—" if v is None else f"{v:.0f}"
    env.filters["pct"] = lambda v: "—" if v is None else f"{v * 100:.0f} %"
    env.filters["ci"] = lambda v: "" if not v else f"[{v[0]:.0f}, {v[1]:.0f}]"
    env.filters["num"] = lambda v, d=3: "—" if v is None else f"{v:.{d}f}"
    return env.from_string(TEMPLATE.read_text()).render(
        doc=doc, stages=STAGES, latency=latency_figure(doc), stages_fig=stage_figure(doc))
