"""`turnbench sweep`: steps of rising concurrency back to back, and the knee of the curve.

The knee is the highest concurrency whose P99 latency stays within the threshold. A step in
which the harness fell behind its own schedule (send lateness p99 above 5 ms, event-loop lag
p99 above 10 ms) measured the harness, not the agent: it is reported, flagged, and never counts
toward capacity.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

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

    @classmethod
    def from_summary(cls, concurrency: int, folder: str, s: dict) -> "StepResult":
        lat = s.get("latency_ms") or {}
        h = s.get("harness") or {}
        errors = sum((s.get("errors") or {}).values())
        return cls(concurrency, s.get("calls", 0), s.get("turns", 0), folder, lat.get("p50"), lat.get("p90"),
                   lat.get("p99"), bool(lat.get("p99_low_n")), s.get("false_interruption_rate"),
                   s.get("barge_in_success_rate"), s.get("no_response_rate"),
                   round(errors / s["calls"], 4) if s.get("calls") else 0.0,
                   h.get("send_lateness_ms_p99"), h.get("loop_lag_ms_p99"), bool(h.get("overloaded")),
                   counted=not h.get("overloaded"))


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


def sweep_figure(doc: dict) -> str:
    """Latency percentiles and false-interruption rate against concurrency, threshold and knee marked."""
    from harness.report.figures import COLORS, _plt, _svg
    plt = _plt()
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
    return _svg(fig)


def sweep_html(doc: dict) -> str:
    """A self-contained page: the figure, the table, and a link to each step's own report."""
    import html
    rows = "".join(
        f"<tr><td>{s['concurrency']}</td><td>{s['calls']}</td><td>{s['latency_p50_ms']}</td><td>{s['latency_p90_ms']}</td>"
        f"<td>{s['latency_p99_ms']}</td><td>{s['false_interruption_rate']}</td><td>{s['barge_in_success_rate']}</td>"
        f"<td>{s['error_rate']}</td><td>{s['send_lateness_ms_p99']}</td><td>{'yes' if s['counted'] else 'NO'}</td>"
        f"<td><a href=\"{html.escape(s['folder'])}/report.html\">report</a></td></tr>" for s in doc["steps"])
    k = doc["knee"]
    return f"""<!doctype html><html><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>turnbench sweep: {html.escape(doc['scenario'])}</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:60em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.2em .6em;text-align:right}}</style></head><body>
<h1>Sweep: {html.escape(doc['scenario'])} → {html.escape(doc['target'])} over {html.escape(doc['transport'])}</h1>
<p><b>Knee: {k['concurrency'] if k['concurrency'] is not None else 'none'}</b> concurrent calls with P99 ≤
{k['threshold_p99_ms']:g} ms — {html.escape(k['why'])}.</p>
{sweep_figure(doc)}
<table><tr><th>concurrency</th><th>calls</th><th>P50</th><th>P90</th><th>P99</th><th>false int.</th>
<th>barge-in</th><th>errors/call</th><th>lateness p99</th><th>counted</th><th></th></tr>{rows}</table>
</body></html>"""
