"""The metric catalogue: one declaration per summary metric, read by everything that shows,
compares or gates one (summary, comparison and gate grammar, the report's headline, the CLI's
table, load results).

Adding a metric is its per-turn field (computed in `metrics/turns.py`) plus one `MetricDef` here;
docs/metrics.md defines each one exactly.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricDef:
    """One summary metric."""

    name: str
    """Its key in summary.json (and the gate grammar): `latency_ms`, `false_interruption_rate`."""
    field: str
    """The turns.jsonl field its samples come from."""
    aggregate: str
    """`percentiles` (a percentile object with bootstrap CIs), `rate` (share of eligible turns
    with Wilson CI, `<name>_ci95`, `<name>_n`) or `mean`."""
    label: str
    """How tables and the report name it."""
    unit: str = "ms"
    """`ms`, `rate` (a share, shown in %) or `ratio`."""
    higher_is_better: bool = False
    kind: str | None = None
    """Only turns of this kind are eligible (e.g. `paused`)."""
    seed: int = 0
    """Bootstrap seed of its percentile CIs (fixed: a rerun gives the same intervals)."""
    headline: tuple[str, ...] = ()
    """Statistics the report leads with (`p50`, `p99`; empty string for a rate or mean itself)."""
    compare: tuple[str, ...] = ()
    """Statistics a comparison of runs reports."""
    budget: dict[str, str] | None = None
    """Default target per statistic where a run sets no threshold, e.g. {"p50": "<=300"}."""
    in_table: bool = True
    """A row of the CLI's summary table."""

    def key(self, stat: str = "") -> str:
        """`latency_ms.p99`, or the name alone for a rate or a mean."""
        return f"{self.name}.{stat}" if stat else self.name


CATALOG: tuple[MetricDef, ...] = (
    MetricDef("latency_ms", "latency_ms", "percentiles", "response latency (ms)", seed=1,
              headline=("p50", "p90", "p99"), compare=("p50", "p90", "p99"),
              budget={"p50": "<=300", "p90": "<=300", "p99": "<=300"}),
    MetricDef("first_byte_ms", "first_byte_ms", "percentiles", "first byte (ms)", seed=2, compare=("p50",)),
    MetricDef("false_interruption_rate", "false_interruption", "rate", "false interruptions", unit="rate",
              headline=("",), compare=("",), budget={"": "<=0.05"}),
    MetricDef("false_interruption_rate_paused", "false_interruption", "rate", "  on paused turns", unit="rate",
              kind="paused", headline=("",), compare=("",), budget={"": "<=0.05"}),
    MetricDef("barge_in_success_rate", "barge_in_success", "rate", "barge-in success", unit="rate",
              higher_is_better=True, headline=("",), compare=("",), budget={"": ">=0.95"}),
    MetricDef("barge_in_stop_ms", "barge_in_stop_ms", "percentiles", "barge-in stop (ms)", seed=3,
              headline=("p50",), compare=("p50",), budget={"p50": "<=300"}),
    MetricDef("backchannel_success_rate", "backchannel_ok", "rate", "backchannel success", unit="rate",
              higher_is_better=True, headline=("",), compare=("",), budget={"": ">=0.9"}),
    MetricDef("no_response_rate", "no_response", "rate", "no response", unit="rate", compare=("",)),
    MetricDef("turn_detection_ms", "turn_detection_ms", "percentiles", "turn detection (ms)", seed=4,
              headline=("p50",), compare=("p50",)),
    MetricDef("dead_air_ms", "dead_air_ms", "percentiles", "dead air in reply (ms)", seed=6, compare=("p50", "p99")),
    MetricDef("first_content_ms", "first_content_ms", "percentiles", "first content word (ms)", seed=7,
              compare=("p50", "p99")),
    MetricDef("fillers_per_reply", "fillers", "mean", "fillers per reply", unit="ratio", compare=("",)),
    MetricDef("speculative_reply_rate", "speculative_reply", "rate", "replies begun speculatively", unit="rate",
              higher_is_better=True, compare=("",)),
    MetricDef("speculations_discarded_per_turn", "speculations_discarded", "mean", "speculations discarded per turn",
              unit="ratio", compare=("",)),
    MetricDef("wer", "wer", "mean", "WER", unit="ratio", headline=("",), compare=("",)),
)
"""In the order tables, summaries and reports show them."""

HEADLINE_LABELS = {
    "latency_ms.p50": "Response latency P50", "latency_ms.p90": "Response latency P90",
    "latency_ms.p99": "Response latency P99", "false_interruption_rate": "False interruptions (all turns)",
    "false_interruption_rate_paused": "False interruptions (paused turns)",
    "barge_in_success_rate": "Barge-in success", "barge_in_stop_ms.p50": "Barge-in stop time P50",
    "backchannel_success_rate": "Backchannel success", "turn_detection_ms.p50": "Turn-detection latency P50",
    "wer": "WER (agent transcript)", "dead_air_ms.p99": "Dead air inside a reply P99",
}
"""The report's longer names for its headline rows (a metric without one uses its label)."""

STAGES = ("turn_detection", "stt_final", "llm_ttft", "tts_ttfb", "transport")
"""The stage breakdown (`stages_ms.<stage>`), consecutive intervals from EOS to the reply heard that
sum to each turn's latency (docs/metrics.md): percentile objects each in the summary."""
STAGE_SEED = 5


def metric(name: str) -> MetricDef | None:
    return next((m for m in CATALOG if m.name == name), None)


def by_aggregate(aggregate: str) -> tuple[MetricDef, ...]:
    return tuple(m for m in CATALOG if m.aggregate == aggregate)
