"""`turnbench gate`: pass/fail a run for CI, on thresholds and on regressions against a baseline."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

import click

from harness.cli.common import EXIT_FAILED, EXIT_OK, EXIT_TARGET, EXIT_USAGE, fail
from harness.report.data import load_run
from harness.thresholds import ThresholdError, check_regression, check_thresholds, evaluate, parse_regression

DEFAULT_REGRESSIONS = ("latency_ms.p99=10",)


@dataclass
class GateOutcome:
    name: str
    kind: str
    """`threshold` or `regression`."""
    status: str
    """`pass`, `fail` or `warn`."""
    detail: str


def write_junit(path: Path, outcomes: list[GateOutcome], run: str) -> None:
    """One <testcase> per gate; a failed gate is a <failure>, an undecidable one is <skipped>."""
    fails = sum(o.status == "fail" for o in outcomes)
    skips = sum(o.status == "warn" for o in outcomes)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             f'<testsuites name="turnbench gate" tests="{len(outcomes)}" failures="{fails}" skipped="{skips}">',
             f'  <testsuite name={quoteattr("turnbench gate " + run)} tests="{len(outcomes)}" '
             f'failures="{fails}" skipped="{skips}" errors="0">']
    for o in outcomes:
        head = f'    <testcase classname="turnbench.gate.{o.kind}" name={quoteattr(o.name)}'
        if o.status == "fail":
            lines += [head + ">", f"      <failure message={quoteattr(o.detail)}/>", "    </testcase>"]
        elif o.status == "warn":
            lines += [head + ">", f"      <skipped message={quoteattr(o.detail)}/>", "    </testcase>"]
        else:
            lines += [head + ">", f"      <system-out>{_xml_text(o.detail)}</system-out>", "    </testcase>"]
    lines += ["  </testsuite>", "</testsuites>"]
    path.write_text("\n".join(lines) + "\n")


def _xml_text(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_markdown(path: Path, outcomes: list[GateOutcome], run: str, baseline: str | None) -> None:
    """A GitHub job summary: verdict first, then one row per gate."""
    icon = {"pass": "✅ pass", "fail": "❌ FAIL", "warn": "⚠️ warn"}
    failed = any(o.status == "fail" for o in outcomes)
    lines = [f"### turnbench gate: {'❌ failed' if failed else '✅ passed'}", "",
             f"Run `{run}`" + (f" against baseline `{baseline}`" if baseline else ""), "",
             "| gate | result | detail |", "|---|---|---|"]
    lines += [f"| `{o.name}` | {icon[o.status]} | {o.detail.replace('|', '/')} |" for o in outcomes]
    path.write_text("\n".join(lines) + "\n")


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, path_type=Path))
@click.option("--baseline", type=click.Path(exists=True, path_type=Path), default=None,
              help="A baseline run folder (bootstrap on both runs' turns) or a summary.json (its values taken as exact).")
@click.option("--threshold", "thresholds", multiple=True, metavar="EXPR",
              help="e.g. 'latency_ms.p99<800' (repeatable); the run's own thresholds (scenario YAML, --threshold "
                   "of `turnbench run`) are checked too.")
@click.option("--max-regression", "regressions", multiple=True, metavar="METRIC=PCT",
              help="With --baseline: fail when METRIC got worse by more than PCT % and the bootstrap interval of "
                   f"the difference excludes zero (repeatable; default {' '.join(DEFAULT_REGRESSIONS)}).")
@click.option("--force", is_flag=True, help="Compare even if the scenario or fixtures differ from the baseline's.")
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write JUnit XML here: one test case per gate.")
@click.option("--markdown", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a Markdown summary here (e.g. $GITHUB_STEP_SUMMARY).")
def gate(run_dir: Path, baseline: Path | None, thresholds: tuple[str, ...], regressions: tuple[str, ...],
         force: bool, junit: Path | None, markdown: Path | None) -> None:
    """Gate RUN_DIR for CI: thresholds, and regressions against --baseline beyond noise.

    \b
    Exit codes: 0 every gate passed (warnings allowed), 1 a gate failed, 2 usage or input error
    (bad expression, unreadable run, scenario/fixtures differ without --force), 3 the run never
    reached the target (no call heard the agent).
    """
    check_thresholds(thresholds)
    rules = []
    for text in regressions or (DEFAULT_REGRESSIONS if baseline else ()):
        try:
            rules.append(parse_regression(text))
        except ThresholdError as e:
            fail(f"--max-regression {e}")
    if regressions and baseline is None:
        fail("--max-regression needs --baseline")
    run = load_run(run_dir)
    base = load_run(baseline) if baseline is not None else None
    if not run.summary.get("target_spoke", True):
        errors = ", ".join(f"{k} ×{v}" for k, v in (run.summary.get("errors") or {}).items()) or "no audible reply"
        fail(f"{run.path}: the run never heard the target ({errors}); nothing to gate", EXIT_TARGET)
    if base is not None:
        _check_same_inputs(run, base, force)
    outcomes: list[GateOutcome] = []
    exprs = [t["expr"] for t in run.summary.get("thresholds") or []] + list(thresholds)
    for r in evaluate(run.summary, list(dict.fromkeys(exprs))):
        got = f"{r.actual:g}" if r.actual is not None else r.problem
        outcomes.append(GateOutcome(r.threshold.expr, "threshold", "pass" if r.passed else "fail", f"got {got}"))
    if base is not None and not run.turns:
        fail(f"{run.path}: no turns.jsonl rows: a regression check needs the run's turns")
    for rule in rules:
        res = check_regression(rule, run.turns, base.turns if base and base.turns else None,
                                                 base.summary if base else None)
        outcomes.append(GateOutcome(rule.name, "regression", res.status, res.reason))
    for o in outcomes:
        tag = {"pass": "pass", "fail": "FAIL", "warn": "warn"}[o.status]
        click.echo(f"[{tag}] {o.name}: {o.detail}")
    if not outcomes:
        click.echo("no gates: give --threshold, or --baseline (with --max-regression), or set thresholds in the scenario",
                   err=True)
    if junit:
        write_junit(junit, outcomes, str(run.path))
    if markdown:
        write_markdown(markdown, outcomes, str(run.path), str(baseline) if baseline else None)
    failed = [o.name for o in outcomes if o.status == "fail"]
    if failed:
        click.echo(f"gate failed: {', '.join(failed)}", err=True)
        raise SystemExit(EXIT_FAILED)
    raise SystemExit(EXIT_OK)


def _check_same_inputs(run, base, force: bool) -> None:
    """Refuse to compare runs of different scenarios or fixtures (their numbers are not comparable)."""
    problems = []
    for key, sub, what in (("scenario", "sha256", "scenario"), ("fixtures", "digest", "fixtures")):
        a = (run.run.get(key) or {}).get(sub)
        b = (base.run.get(key) or {}).get(sub)
        if a is None or b is None:
            if not force:
                click.echo(f"warning: cannot verify the {what} is the same (no run.json {key}.{sub} in "
                           f"{'the baseline' if b is None else 'the run'})", err=True)
        elif a != b:
            problems.append(f"{what} differs ({key}.{sub} {a[:12]} vs baseline {b[:12]})")
    if problems and not force:
        fail(f"{run.path} vs {base.path}: " + "; ".join(problems) + " — not comparable (use --force to compare anyway)",
             EXIT_USAGE)
