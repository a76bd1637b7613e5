"""The end of every run: thresholds checked into the summary, the report written, the exit code."""

from __future__ import annotations

from pathlib import Path

from harness.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_TARGET
from harness.thresholds import evaluate


def apply_thresholds(summary: dict, thresholds) -> bool:
    """Evaluate `thresholds` against the summary, record them in it (`thresholds`); True if all pass."""
    checks = evaluate(summary, list(thresholds))
    summary["thresholds"] = [{"expr": c.threshold.expr, "actual": c.actual, "pass": c.passed} for c in checks]
    return all(c.passed for c in checks)


def write_report(folder: Path) -> str | None:
    """report.html of a finished run folder; the problem as text when it could not be written
    (the measurements are already on disk: a report problem must not hide them)."""
    try:
        from harness.report.data import load_run
        from harness.report.html import write_html_report
        write_html_report([load_run(folder)], folder / "report.html")
    except Exception as e:  # noqa: BLE001 - reported, never fatal
        return f"report.html not written ({type(e).__name__}: {e}); retry with `turnbench report {folder}`"
    return None


def threshold_lines(summary: dict) -> list[str]:
    lines = []
    for check in summary.get("thresholds", []):
        got = f"{check['actual']:g}" if check["actual"] is not None else "no value"
        lines.append(f"  [{'pass' if check['pass'] else 'FAIL'}] {check['expr']} (got {got})")
    return lines


def every_call_failed(summary: dict) -> str | None:
    """`every call failed: CAUSE (N of M): first message` when no call got through, else None."""
    errors, calls = summary.get("errors") or {}, summary.get("calls") or 0
    if not calls or summary.get("target_spoke") or sum(errors.values()) < calls:
        return None
    kind, n = max(errors.items(), key=lambda kv: kv[1])
    example = (summary.get("error_examples") or {}).get(kind, "")
    detail = example[len(kind):].lstrip(": ") if example.startswith(kind) else example
    return f"every call failed: {kind} ({n} of {calls})" + (f": {detail}" if detail else "")


def exit_code(summary: dict, interrupted: bool = False) -> tuple[int, str | None]:
    """The run's exit code, and the error line that goes with it (None when there is none)."""
    if interrupted:
        return EXIT_INTERRUPTED, None
    if (failed := every_call_failed(summary)) is not None:
        return EXIT_TARGET, failed
    if not summary.get("target_spoke"):
        return EXIT_TARGET, (f"{summary.get('target')}: the target never spoke (no audible audio in any turn); "
                             "is it a voice agent?")
    if any(not c["pass"] for c in summary.get("thresholds", [])):
        return EXIT_FAILED, None
    return EXIT_OK, None
