"""`turnbench calibrate`: prove the measurement against the oracle's ground truth."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import click

from harness.audio.fixtures import FixtureLibrary
from harness.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, fail
from harness.cli.options import fixtures_option, impairment_options
from harness.transports.registry import transport_names


@click.command()
@click.option("--transport", type=click.Choice(transport_names()), default="ws-pcm", show_default=True,
              help="Transport the oracle is served and called over.")
@impairment_options
@click.option("--calls-per-case", type=click.IntRange(1, 20), default=2, show_default=True,
              help="Calls per programmed behaviour (7 turns each; all run side by side).")
@click.option("--quick", is_flag=True, help="Only 4 of the behaviours (paced, noise floor, burst, false interruptions).")
@click.option("--listen", is_flag=True,
              help="Hint-free: call the listening oracle as any agent (no turnbench hints) and score latency against "
                   "its log, pairing turns by where speech ended (clean, noise floor, leading silence, bursts, "
                   "quiet voice with nothing between replies).")
@click.option("--json", "as_json", is_flag=True, help="Print the calibration document (turnbench.calibration/1).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the calibration document to this file.")
@click.option("--strict", is_flag=True,
              help="Also bound the raw tails (latency and first byte p99 <= 3 ms, barge-in stop p99 <= 5 ms), "
                   "loopback delay and machine stalls included.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the oracles' random delays.")
@fixtures_option
def calibrate(transport: str, impairment, calls_per_case: int, quick: bool, listen: bool, as_json: bool,
              out: Path | None, strict: bool, seed: int, fixtures_dir: Path | None) -> None:
    """Run fixed oracle behaviours and report how far each measurement is from the truth.

    Per metric: the median and p99 of |measured - true|, raw and net of the transport's own
    delay (each turn's EOS frame and reply chunk are stamped at both ends, so the loopback's
    delay is measured, not assumed); per classification (false interruption, barge-in,
    backchannel, response): correct / total. Exits 1 when a bound is exceeded: raw latency and
    first-byte median <= 1 ms; net latency and first-byte p99 <= 3 ms; net barge-in stop p99
    <= 5 ms; every classification 100 % (--strict adds the raw tails).
    """
    from harness.calibration.cases import CASES, QUICK_CASES
    from harness.calibration.run import calibrate as run_calibration
    lib = FixtureLibrary.load(fixtures_dir)
    cases = tuple(c for c in CASES if not quick or c.name in QUICK_CASES)

    tty = sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        if tty or done == total:
            click.echo(f"\rcalibrating: {done}/{total} calls", nl=False, err=True)

    if listen:
        if impairment is not None:
            fail("--listen scores the bare transport: drop --impair", EXIT_USAGE)
        _listen(lib, calls_per_case, transport, seed, progress, as_json, out)
        return

    from harness.calibration.compare import STRICT_BOUNDS
    report = asyncio.run(run_calibration(lib, cases, calls_per_case, transport, seed,
                                         STRICT_BOUNDS if strict and transport != "webrtc" else None, progress,
                                         impairment=impairment))
    click.echo("", err=True)
    if out:
        out.write_text(json.dumps(report, indent=1, allow_nan=False) + "\n")
    if as_json:
        click.echo(json.dumps(report, indent=1, allow_nan=False))
    else:
        click.echo(f"calibration over {transport}: {len(cases)} behaviours x {calls_per_case} calls"
                   + (f", impairment {impairment.describe()}" if impairment else ""))
        tables = [("raw", report["metrics"]), ("net of transport", report["metrics_net_of_transport"])]
        if report.get("metrics_net_of_impairment"):
            tables.insert(1, ("net of impairment", report["metrics_net_of_impairment"]))
            click.echo(f"  impairment added (median): {report['impairment_added_ms']}; turns left out because a "
                       f"lost packet held, or sat next to, the onset or stop: {report['excluded_for_loss']}")
        for label, table in tables:
            for name, m in table.items():
                if m["n"]:
                    click.echo(f"  {name:18} {label:17} |error| median {m['median_abs_error_ms']:.3f} ms, "
                               f"p99 {m['p99_abs_error_ms']:.3f} ms, max {m['max_abs_error_ms']:.3f} ms (n={m['n']})")
        o = report["transport_overhead_ms"]
        if o["n"]:
            click.echo(f"  transport overhead (EOS frame up, onset chunk heard later): median {o['median']} ms, "
                       f"p99 {o['p99']} ms, max {o['max']} ms")
        for name, a in report["transport_added_ms"].items():
            if a is not None and transport == "webrtc":
                click.echo(f"  {name:18} added by the transport: median {a['median']} ms (p1 {a['p1']}, "
                           f"p99 {a['p99']}); |error| after subtracting it p99 {a['spread_p99_ms']} ms")
        for name, c in report["classification"].items():
            click.echo(f"  {name:18} {c['correct']}/{c['total']} correct")
        click.echo(f"  oracle slip (truth - programmed delay): median {report['oracle_slip_ms']['median']} ms")
        h = report.get("harness") or {}
        if h.get("overloaded"):
            click.echo(f"  WARNING: the harness was overloaded (send lateness p99 {h['send_lateness_ms_p99']} ms, "
                       f"loop lag p99 {h['loop_lag_ms_p99']} ms, CPU steal {h.get('cpu_steal_pct')} %): "
                       "raw tails include that")
        for chk in report["bounds"]:
            click.echo(f"  [{'pass' if chk['pass'] else 'FAIL'}] {chk['check']} (got {chk['value']})")
        for m in report["mismatches"][:10]:
            click.echo(f"  mismatch: {m}")
        click.echo("PASS" if report["pass"] else "FAIL")
    raise SystemExit(EXIT_OK if report["pass"] else EXIT_FAILED)


def _listen(lib: FixtureLibrary, calls_per_case: int, transport: str, seed: int, progress, as_json: bool,
            out: Path | None) -> None:
    from harness.calibration.listening import calibrate_listening
    report = asyncio.run(calibrate_listening(lib, calls_per_case, transport, seed, progress))
    click.echo("", err=True)
    text = json.dumps(report, indent=1, allow_nan=False)
    if out:
        out.write_text(text + "\n")
    if as_json:
        click.echo(text)
    else:
        e = report["latency_error_ms"]
        click.echo(f"hint-free calibration over {transport} against the listening oracle "
                   f"(hangover {report['hangover_ms']:g} ms; the loopback's delay included):")
        for name, c in report["by_case"].items():
            click.echo(f"  {name:22} |error| median {c['median_abs_error_ms']} ms, max {c['max_abs_error_ms']} ms "
                       f"(n={c['n']})")
        click.echo(f"  all: median {e['median_abs_error_ms']} ms, max {e['max_abs_error_ms']} ms (n={e['n']}); "
                   f"turns not paired: {report['turns_unpaired']}")
        click.echo("PASS" if report["pass"] else "FAIL")
    raise SystemExit(EXIT_OK if report["pass"] else EXIT_FAILED)
