"""The sweep's page: latency against concurrency, the knee, and a link to every step's report."""

from __future__ import annotations

from pathlib import Path

from harness.report.figures import COLORS, pyplot, to_svg

TEMPLATE = Path(__file__).with_name("sweep.html.j2")


def sweep_figure(doc: dict) -> str:
    """Latency percentiles and false-interruption rate against concurrency, threshold and knee marked."""
    plt = pyplot()
    steps = doc["steps"]
    xs = [s["concurrency"] for s in steps]
    fig, ax = plt.subplots(figsize=(7, 3.4))
    for i, key in enumerate(("latency_p50_ms", "latency_p90_ms", "latency_p99_ms")):
        ax.plot(xs, [s[key] if s[key] is not None else float("nan") for s in steps], marker="o",
                color=COLORS[i], label=key.split("_")[1].upper())
    bad = [s for s in steps if not s["counted"]]
    if bad:
        ax.scatter([s["concurrency"] for s in bad], [s["latency_p99_ms"] or 0 for s in bad], marker="x", s=80,
                   color="black", zorder=5, label="harness overloaded (not counted)")
    k = doc["knee"]
    ax.axhline(k["threshold_p99_ms"], color="#d62728", ls="--", lw=1, label=f"P99 threshold {k['threshold_p99_ms']:g} ms")
    if k["concurrency"] is not None:
        ax.axvline(k["concurrency"], color="#2ca02c", ls=":", lw=1.5, label=f"knee: {k['concurrency']}")
    ax.set_xscale("log", base=2)
    ax.set_xticks(xs, [str(x) for x in xs])
    ax.set_xlabel("concurrent calls")
    ax.set_ylabel("latency, ms")
    ax2 = ax.twinx()
    ax2.plot(xs, [(s["false_interruption_rate"] or 0) * 100 for s in steps], color=COLORS[4], ls=":", marker=".",
             label="false interruptions %")
    ax2.set_ylabel("false interruptions, %")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper left")
    return to_svg(fig)


def sweep_html(doc: dict) -> str:
    """A self-contained page: the figure, the table, and a link to each step's own report."""
    import jinja2
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(TEMPLATE.read_text()).render(doc=doc, knee=doc["knee"], figure=sweep_figure(doc))
