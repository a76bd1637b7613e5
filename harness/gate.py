"""Thresholds on summary fields, in a k6-like grammar: `latency_ms.p99<800`, `barge_in_success_rate>=0.95`."""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

OPS = {"<=": operator.le, ">=": operator.ge, "==": operator.eq, "!=": operator.ne, "<": operator.lt, ">": operator.gt}
_EXPR = re.compile(r"\s*(?P<path>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\s*(?P<op><=|>=|==|!=|<|>)\s*"
                   r"(?P<value>-?\d+(?:\.\d+)?(?:[eE]-?\d+)?)\s*$")


class ThresholdError(ValueError):
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

    def check(self, summary: dict) -> "ThresholdResult":
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


def parse_threshold(expr: str) -> Threshold:
    """Parse one expression or raise ThresholdError pointing at the offending column."""
    m = _EXPR.match(expr)
    if m:
        return Threshold(expr, tuple(m["path"].split(".")), m["op"], float(m["value"]))
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
