"""Shared CLI pieces: exit codes, error reporting, the summary table."""

from __future__ import annotations

import sys
from typing import NoReturn

import click

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_TARGET = 0, 1, 2, 3
EXIT_INTERRUPTED = 130


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print a one-line error to stderr and exit with `code`."""
    click.echo(f"turnbench: error: {message}", err=True)
    sys.exit(code)


def check_thresholds(exprs, option: str = "--threshold") -> None:
    """Exit 2 on the first malformed expression, pointing at its column."""
    from harness.gate import ThresholdError, parse_threshold
    for expr in exprs:
        try:
            parse_threshold(expr)
        except ThresholdError as e:
            fail(f"{option} {e}")


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
    rows = [
        ("response latency (ms)", _dist(s.get("latency_ms"))),
        ("first byte (ms)", _dist(s.get("first_byte_ms"))),
        ("false interruptions", _pct(s, "false_interruption_rate")),
        ("  on paused turns", _pct(s, "false_interruption_rate_paused")),
        ("barge-in success", _pct(s, "barge_in_success_rate")),
        ("barge-in stop (ms)", _dist(s.get("barge_in_stop_ms"))),
        ("backchannel success", _pct(s, "backchannel_success_rate")),
        ("no response", _pct(s, "no_response_rate")),
        ("turn detection (ms)", _dist(s.get("turn_detection_ms"))),
        ("WER", _fmt(s.get("wer"))),
    ]
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


def impairment_options(func):
    """--impair PROFILE and explicit --delay-ms/--jitter-ms/--loss/--loss-burst (override the profile)."""
    from harness.transports.impair import PROFILES
    opts = [
        click.option("--impair", "impair", type=click.Choice(sorted(PROFILES)), default=None,
                     help="Network impairment on the caller's side, both directions, seeded: "
                          + "; ".join(p.describe() for p in PROFILES.values()) + "."),
        click.option("--delay-ms", type=click.FloatRange(min=0), default=None, help="One-way added delay."),
        click.option("--jitter-ms", type=click.FloatRange(min=0), default=None,
                     help="Per-packet delay spread (standard deviation); order is kept."),
        click.option("--loss", type=click.FloatRange(0, 0.99), default=None,
                     help="Share of packets lost (0.01 = 1 %); a lost packet is silence."),
        click.option("--loss-burst", type=click.FloatRange(min=1), default=None,
                     help="Mean loss burst length in packets (1 = independent losses)."),
        click.option("--reorder", is_flag=True, default=None,
                     help="Let jitter reorder packets (off: order is kept within each direction)."),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


def agent_options(func):
    """What `load` and `sweep` call and how: --target, --transport, the impairment, and the
    built-in agents' --agent-args / --oracle (one definition, so the commands cannot drift)."""
    from harness.agent.targets import BUILTIN_TARGETS
    opts = [
        click.option("--target", "-t", default=None,
                     help=f"ws:// or http:// URL of the agent, or {', '.join(BUILTIN_TARGETS)} (default: the scenario's)."),
        click.option("--transport", type=click.Choice(["ws-pcm", "twilio", "webrtc"]), default=None,
                     help="Wire protocol (default: the scenario's defaults.transport)."),
        impairment_options,
        click.option("--agent-args", default="", metavar="'OPTIONS'", help="Options for the reference agent (see `run`)."),
        click.option("--oracle", "oracle_opts", multiple=True, metavar="KEY=VALUE", help="Oracle behaviour (see `run`)."),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


def impairment_from(impair, delay_ms, jitter_ms, loss, loss_burst, reorder=None):
    """The impairment profile the options describe (None: no impairment)."""
    from harness.transports.impair import resolve_profile
    try:
        return resolve_profile(impair, delay_ms=delay_ms, jitter_ms=jitter_ms, loss=loss, burst=loss_burst,
                               reorder=reorder or None)
    except ValueError as e:
        fail(str(e), EXIT_USAGE)
