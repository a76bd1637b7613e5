"""CI gating: thresholds on summary fields in a k6-like grammar (`latency_ms.p99<800`,
`barge_in_success_rate>=0.95`), and regressions against a baseline that are bigger than noise."""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass

from harness.errors import InputError
from harness.metrics import catalog
from harness.metrics.compare import Delta, Metric, MetricError, bootstrap_delta, delta_against_point, parse_metric

OPS = {"<=": operator.le, ">=": operator.ge, "==": operator.eq, "!=": operator.ne, "<": operator.lt, ">": operator.gt}
_EXPR = re.compile(r"\s*(?P<path>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\s*(?P<op><=|>=|==|!=|<|>)\s*"
                   r"(?P<value>-?\d+(?:\.\d+)?(?:[eE]-?\d+)?)\s*$")


class ThresholdError(InputError):
    """A malformed threshold expression; `position` is the 0-based column of the problem."""

    def __init__(self, expr: str, position: int, message: str):
        self.expr, self.position = expr, position
        super().__init__(f"{expr!r} at column {position + 1}: {message}\n  {expr}\n  {' ' * position}^")


@dataclass(frozen=True)
class Threshold:
    expr: str
    path: tuple[str, ...]
    op: str
    value: float

    def check(self, summary: dict) -> ThresholdResult:
        actual: object = summary
        for key in self.path:
            actual = actual.get(key) if isinstance(actual, dict) else None
        if not isinstance(actual, (int, float)) or isinstance(actual, bool):
            return ThresholdResult(self, None, False, f"{'.'.join(self.path)} is not in the summary (no samples?)")
        ok = bool(OPS[self.op](actual, self.value))
        return ThresholdResult(self, float(actual), ok, None)


@dataclass(frozen=True)
class ThresholdResult:
    threshold: Threshold
    actual: float | None
    passed: bool
    problem: str | None

    def line(self) -> str:
        got = f"{self.actual:g}" if self.actual is not None else self.problem
        return f"[{'pass' if self.passed else 'FAIL'}] {self.threshold.expr} (got {got})"


OTHER_SUMMARY_FIELDS = ("calls", "turns", "stages_ms", "setup_ms", "harness", "measurement_error_ms", "load",
                        "arrivals", "engines")
"""Summary fields a threshold may name beside the metric catalogue's (load runs add the last four)."""


def summary_fields() -> set[str]:
    """Every top-level summary field a threshold may name."""
    out = set(OTHER_SUMMARY_FIELDS)
    for m in catalog.CATALOG:
        out.add(m.name)
        if m.aggregate == "rate":
            out |= {f"{m.name}_n"}
    return out


def parse_threshold(expr: str) -> Threshold:
    """Parse one expression or raise ThresholdError pointing at the offending column."""
    m = _EXPR.match(expr)
    if m:
        head = m["path"].split(".")[0]
        if head not in summary_fields():
            raise ThresholdError(expr, m.start("path"), f"unknown summary field {head!r}; known: "
                                 + ", ".join(sorted(summary_fields())))
        value = float(m["value"])
        if not math.isfinite(value):
            raise ThresholdError(expr, m.start("value"), "the number is too large")
        return Threshold(expr, tuple(m["path"].split(".")), m["op"], value)
    path = re.match(r"\s*[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*", expr)
    if not path:
        raise ThresholdError(expr, len(expr) - len(expr.lstrip()), "expected a summary field, e.g. latency_ms.p99")
    pos = path.end()
    rest = expr[pos:]
    pos += len(rest) - len(rest.lstrip())
    op = next((o for o in OPS if expr.startswith(o, pos)), None)
    if op is None:
        raise ThresholdError(expr, pos, f"expected one of {' '.join(OPS)}")
    pos += len(op)
    pos += len(expr[pos:]) - len(expr[pos:].lstrip())
    raise ThresholdError(expr, pos, "expected a number")


def evaluate(summary: dict, exprs: list[str]) -> list[ThresholdResult]:
    """Check every expression against a summary.json document."""
    return [parse_threshold(e).check(summary) for e in exprs]


# -- regressions against a baseline ---------------------------------------------------------------


@dataclass(frozen=True)
class RegressionRule:
    """`METRIC=PCT`: fail when METRIC got worse by more than PCT % and the change is beyond noise."""

    metric: Metric
    max_pct: float

    @property
    def name(self) -> str:
        return f"{self.metric.name} regression <= {self.max_pct:g}%"


@dataclass(frozen=True)
class RegressionResult:
    rule: RegressionRule
    delta: Delta
    status: str
    """`pass`, `fail` or `warn` (could not decide: too few samples, or no data)."""
    reason: str

    def line(self) -> str:
        return f"[{self.status.upper() if self.status == 'fail' else self.status}] {self.rule.name}: {self.reason}"


def parse_regression(text: str) -> RegressionRule:
    """`latency_ms.p99=10` or `latency_ms.p99=10%` → RegressionRule (ThresholdError on bad input)."""
    name, sep, pct = text.partition("=")
    if not sep:
        raise ThresholdError(text, len(text), "expected METRIC=PERCENT, e.g. latency_ms.p99=10")
    try:
        metric = parse_metric(name.strip())
    except MetricError as e:
        raise ThresholdError(text, len(name) - len(name.lstrip()), str(e)) from None
    digits = pct.strip().rstrip("%").strip()
    try:
        value = float(digits)
    except ValueError:
        raise ThresholdError(text, len(name) + 1 + (len(pct) - len(pct.lstrip())), "expected a percentage") from None
    if value < 0:
        raise ThresholdError(text, len(name) + 1, "the allowed regression cannot be negative")
    return RegressionRule(metric, value)


def check_regression(rule: RegressionRule, turns: list[dict], base_turns: list[dict] | None = None,
                     base_summary: dict | None = None, seed: int = 0) -> RegressionResult:
    """Fail only when worse by more than the allowed percentage *and* the 95 % bootstrap interval of
    the difference excludes zero; warn when the sample is too small to decide."""
    m = rule.metric
    cur = m.samples(turns)
    if base_turns is not None:
        d = bootstrap_delta(m, m.samples(base_turns), cur, seed=seed)
        n_base = d.n_a
    else:
        d = delta_against_point(m, m.from_summary(base_summary or {}), cur, seed=seed)
        n_base = _summary_n(base_summary or {}, m.name)
    if d.diff is None:
        side = "this run" if d.b is None else "the baseline"
        return RegressionResult(rule, d, "warn", f"no samples of {m.name} in {side}")
    small = min(d.n_b, n_base) < m.min_n
    pct = d.pct
    change = f"{d.a:.4g} → {d.b:.4g} ({'+' if d.diff >= 0 else ''}{pct:.1f} %), 95 % CI of the difference " \
             f"[{d.ci95[0]:.4g}, {d.ci95[1]:.4g}]"
    if small:
        return RegressionResult(rule, d, "warn", f"{change}; too few samples to decide (n={d.n_b} here, "
                                f"{n_base} in the baseline; {m.name} needs at least {m.min_n})")
    if d.worse and abs(pct) > rule.max_pct and d.significant:
        return RegressionResult(rule, d, "fail", f"{change}: worse by more than {rule.max_pct:g} % and beyond noise")
    if d.worse and abs(pct) > rule.max_pct:
        return RegressionResult(rule, d, "pass", f"{change}: worse, but within noise")
    return RegressionResult(rule, d, "pass", change)


def _summary_n(summary: dict, name: str) -> int:
    """Sample count behind a summary metric: `n` of its percentile object, or `<rate>_n`."""
    if name in summary and not isinstance(summary[name], dict):
        return int(summary.get(f"{name}_n") or 0)
    node: object = summary
    for key in name.split(".")[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    return int(node.get("n") or 0) if isinstance(node, dict) else 0


def check_thresholds(exprs, option: str = "--threshold") -> None:
    """InputError on the first malformed expression, pointing at its column."""
    for expr in exprs:
        try:
            parse_threshold(expr)
        except ThresholdError as e:
            raise InputError(f"{option} {e}") from None
