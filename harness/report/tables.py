"""The summary and the per-turn table as JSON, CSV or Markdown (`turnbench report --format …`)."""

from __future__ import annotations

import json

import pandas as pd

from harness.metrics.catalog import STAGES
from harness.report.data import RunData

TURN_COLUMNS = ("call_id", "turn", "kind", "fixture", "latency_ms", "first_byte_ms", "false_interruption",
                "barge_in_stop_ms", "barge_in_success", "backchannel_ok", "no_response", "turn_detection_ms",
                "stt_final_ms", "llm_ttft_ms", "tts_ttfb_ms", "transport_ms", "wer", "transcript", "error")


def flatten(d: dict, prefix: str = "") -> dict:
    """{'latency_ms': {'p50': 1}} → {'latency_ms.p50': 1}; lists kept as JSON text."""
    out: dict = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        elif isinstance(v, list):
            out[key] = json.dumps(v)
        else:
            out[key] = v
    return out


def summary_frame(runs: list[RunData]) -> pd.DataFrame:
    """Rows = summary fields (numbers and rates), one column per run."""
    cols = {}
    for r in runs:
        flat = flatten({k: v for k, v in r.summary.items() if k not in ("schema", "providers", "thresholds")})
        cols[r.label] = pd.Series(flat, dtype=object)
    frame = pd.DataFrame(cols)
    frame.index.name = "metric"
    return frame


def turns_frame(runs: list[RunData]) -> pd.DataFrame:
    """One row per turn (all runs, with a `run` column); stages flattened into `<stage>_ms`."""
    records = []
    for r in runs:
        for t in r.turns:
            st = t.get("stages_ms") or {}
            row = {"run": r.label, **{c: t.get(c) for c in TURN_COLUMNS}}
            for s in STAGES:
                row[f"{s}_ms"] = st.get(s)
            records.append(row)
    return pd.DataFrame.from_records(records, columns=["run", *TURN_COLUMNS])


def render(runs: list[RunData], fmt: str, table: str) -> str:
    """`fmt` in json|csv|markdown; `table` in summary|turns."""
    if fmt == "json":
        if table == "summary":
            return json.dumps({"schema": "turnbench.report/1", "runs": [
                {"label": r.label, "path": str(r.path), "summary": r.summary} for r in runs]}, indent=1)
        return turns_frame(runs).to_json(orient="records", lines=True)
    frame = summary_frame(runs) if table == "summary" else turns_frame(runs)
    if fmt == "csv":
        return frame.to_csv(index=table == "summary")
    return _markdown(frame.reset_index() if table == "summary" else frame)


def _markdown(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured table without the optional `tabulate` dependency."""
    def cell(v) -> str:
        if v is None or (isinstance(v, float) and pd.isna(v)):
            return ""
        return str(v).replace("|", "\\|").replace("\n", " ")
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"
