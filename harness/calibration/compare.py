"""Measured turns vs the oracle's truth: errors per metric, classification accuracy, bounds."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from harness.agent.oracle import TurnTruth
from harness.metrics.turns import TurnResult

CALIBRATION_SCHEMA = "turnbench.calibration/1"
DEFAULT_BOUNDS = {
    "raw.latency_ms.median_abs_error_ms": 1.0, "raw.first_byte_ms.median_abs_error_ms": 1.0,
    "net.latency_ms.p99_abs_error_ms": 3.0, "net.first_byte_ms.p99_abs_error_ms": 3.0,
    "net.barge_in_stop_ms.p99_abs_error_ms": 5.0,
    "net.dead_air_ms.p99_abs_error_ms": 1.0, "net.first_content_ms.p99_abs_error_ms": 3.0,
    "classification": 1.0,
}
"""Raw: measured vs the oracle's own account, the loopback's delay included. Net: the same
with each turn's transport delay removed, measured from both ends' stamps of the very messages
the number rests on. Tails are bounded net: on a shared VM the raw tail is the hypervisor's
(CPU steal freezes the loopback for tens of ms), which the report shows beside it. Dead air is a
gap between two heard edges of the same stream: net of it is net of how much the loopback moved
the chunk after the gap against the chunk before it. The first content word (after a filler) is an
onset like the reply's, found from the agent's `response.content_start` mark: it has latency's bound."""
WEBRTC_BOUNDS = {
    "offset.latency_ms.p99_abs_error_ms": 10.0, "offset.first_byte_ms.p99_abs_error_ms": 22.0,
    "offset.barge_in_stop_ms.p99_abs_error_ms": 15.0, "raw.dead_air_ms.p99_abs_error_ms": 5.0,
    "classification": 1.0,
}
"""WebRTC re-frames audio (Opus, 20 ms packets), so messages do not pair up end to end: its own
added latency (packetisation, codec delay) is measured as the median signed error and reported,
and the error after subtracting it is bounded. The caller's frames do pair up (one RTP packet
each way), so each turn's uplink trip, stamped at both ends, is taken out first. The oracle's
first-byte truth is when the packet holding its onset (after Opus's 6.5 ms delay) leaves; the
codec smears an onset over a few ms, so one near a packet boundary is heard in the packet
before, and first byte is exact to one packet (bound 20 ms + 2). A stop is an abrupt cut whose
codec ringing outlasts it by an amount that depends on the waveform at the cut (bound 15 ms).
A gap inside a reply has both: a stop's ringing and an onset's smear, packets apart (bound 5 ms,
raw: the packet delay is the same on both sides of it). The first content word is not bounded on
WebRTC: its mark travels on the data channel, which is not ordered with the RTP audio it marks."""
TWILIO_BOUNDS = DEFAULT_BOUNDS | {"net.dead_air_ms.p99_abs_error_ms": 2.0}
"""Twilio's wire is 8 kHz μ-law: each edge of a gap is resampled twice, and moves by up to a ms."""
IMPAIRED_BOUNDS = {"impaired.latency_ms.p99_abs_error_ms": 3.0, "impaired.first_byte_ms.p99_abs_error_ms": 3.0,
                   "impaired.barge_in_stop_ms.p99_abs_error_ms": 5.0, "impaired.dead_air_ms.p99_abs_error_ms": 1.0,
                   "impaired.first_content_ms.p99_abs_error_ms": 3.0}
"""With an impairment profile: |measured − truth − what the path recorded adding to that very
packet| has the loopback's bounds (raw medians there mean this, too)."""
STRICT_BOUNDS = DEFAULT_BOUNDS | {"raw.latency_ms.p99_abs_error_ms": 3.0, "raw.first_byte_ms.p99_abs_error_ms": 3.0,
                                  "raw.barge_in_stop_ms.p99_abs_error_ms": 5.0}


ONLY_SOME_CASES = frozenset({"first_content_ms"})
"""Metrics only some calibration cases produce (the oracle marks content in `dead_air` only): a
run of other cases has no samples of them, which is not an error."""


def _stats(errs: list[float]) -> dict:
    a = np.array(errs)
    if not a.size:
        return {"median_abs_error_ms": None, "p99_abs_error_ms": None, "max_abs_error_ms": None, "n": 0}
    return {"median_abs_error_ms": round(float(np.median(a)), 3),
            "p99_abs_error_ms": round(float(np.percentile(a, 99)), 3),
            "max_abs_error_ms": round(float(a.max()), 3), "n": int(a.size)}


@dataclass
class Comparison:
    """Accumulates measured/true pairs across cases."""

    threshold_ms: float = 500.0
    codec_ms: float = 0.0
    """What a re-framing transport (WebRTC) adds beyond the stamped trips (packetisation, codec)."""
    errors: dict[str, list[float]] = field(default_factory=lambda: {
        "latency_ms": [], "first_byte_ms": [], "barge_in_stop_ms": [], "turn_detection_ms": [], "dead_air_ms": [],
        "first_content_ms": []})
    net: dict[str, list[float]] = field(default_factory=lambda: {
        "latency_ms": [], "first_byte_ms": [], "barge_in_stop_ms": [], "dead_air_ms": [], "first_content_ms": []})
    transport: list[float] = field(default_factory=list)
    signed: list[float] = field(default_factory=list)
    signed_by_metric: dict[str, list[float]] = field(default_factory=lambda: {
        "latency_ms": [], "first_byte_ms": [], "barge_in_stop_ms": []})
    slip: list[float] = field(default_factory=list)
    classes: dict[str, list[int]] = field(default_factory=lambda: {
        "false_interruption": [0, 0], "barge_in": [0, 0], "backchannel": [0, 0], "response": [0, 0]})
    mismatches: list[dict] = field(default_factory=list)
    impaired: dict[str, list[float]] = field(default_factory=lambda: {
        "latency_ms": [], "first_byte_ms": [], "barge_in_stop_ms": [], "dead_air_ms": [], "first_content_ms": []})
    """|measured − truth − what the impairment recorded adding| per metric."""
    impairment_added: dict[str, list[float]] = field(default_factory=lambda: {
        "latency_ms": [], "first_byte_ms": [], "barge_in_stop_ms": [], "dead_air_ms": [], "first_content_ms": []})
    gaps: int = 0
    """Turns whose reply, by the oracle's account, had a gap inside it (dead air above 0)."""
    excluded: int = 0
    """Turns left out because a lost packet held the measured onset or stop."""
    by_case: dict[str, list[float]] = field(default_factory=dict)
    """Latency |error| per case: which behaviour a transport mismeasures."""
    by_case_net: dict[str, list[float]] = field(default_factory=dict)
    """The same net of the loopback (where both ends' stamps pair up)."""

    def add(self, case: str, measured: TurnResult, truth: TurnTruth | None,
            transport_ms: dict[str, float | None] | None = None,
            uplink_ms: dict[str, float | None] | None = None,
            impairment_ms: dict[str, float] | None = None) -> None:
        """One turn. `transport_ms`: per metric, what the loopback added to it, from both ends'
        stamps of the same messages (see calibration.run._transport_delays)."""
        transport_ms, uplink_ms, impairment_ms = transport_ms or {}, uplink_ms or {}, impairment_ms or {}
        if truth is None:
            self.mismatches.append({"case": case, "call_id": measured.call_id, "turn": measured.turn,
                                    "what": "oracle has no record of this turn"})
            return
        for name in self.errors:
            m, t = getattr(measured, name), getattr(truth, name)
            if m is not None and t is not None:
                self.errors[name].append(abs(m - t))
                if name in impairment_ms and name in self.impaired:  # the path's own delay taken out
                    self.impaired[name].append(abs(m - t - impairment_ms[name]))
                    self.impairment_added[name].append(impairment_ms[name])
                if name in self.signed_by_metric:  # net of the caller's frame's own trip, where paired
                    self.signed_by_metric[name].append(m - t - (uplink_ms.get(f"up.{name}") or 0.0))
                if name == "latency_ms":
                    self.signed.append(m - t)
                    self.by_case.setdefault(case, []).append(abs(m - t))
                delay = transport_ms.get(name)
                if name in self.net and delay is not None:
                    self.net[name].append(abs(m - t - delay))
                    if name == "latency_ms":
                        self.by_case_net.setdefault(case, []).append(abs(m - t - delay))
        self.gaps += bool(truth.dead_air_ms)
        if transport_ms.get("latency_ms") is not None and measured.latency_ms is not None:
            self.transport.append(transport_ms["latency_ms"])
        if truth.latency_ms is not None and truth.programmed_delay_ms is not None:
            self.slip.append(truth.latency_ms - truth.programmed_delay_ms)
        # on an impaired path the caller hears the agent stop later by the path's round trip:
        # success is judged on that, as the caller's own classification is
        heard_stop = (None if truth.barge_in_stop_ms is None else
                      truth.barge_in_stop_ms + impairment_ms.get("barge_in_stop_ms", 0.0))
        # the caller judges "the agent was talking when I started" from what it heard, which lags
        # the oracle by the round trip: an agent that fell quiet within it was still heard
        round_trip = impairment_ms.get("barge_in_stop_ms", 0.0) + (uplink_ms.get("up.barge_in_stop_ms") or 0.0)
        heard_at_start = truth.audible_at_start or (truth.silent_for_ms is not None
                                                    and truth.silent_for_ms <= round_trip + self.codec_ms)
        if heard_at_start and heard_stop is None and not truth.audible_at_start:
            # quiet at the oracle, still heard by the caller: it hears the stop that much into its turn
            heard_stop = round_trip + self.codec_ms - truth.silent_for_ms
        true_cls = {
            "false_interruption": truth.false_interruption,
            "barge_in": (None if measured.kind != "barge_in" or not heard_at_start else
                         bool(heard_stop is not None and heard_stop <= self.threshold_ms
                              and truth.latency_ms is not None)),
            "backchannel": truth.backchannel_kept_talking if measured.kind == "backchannel" else None,
            "response": (truth.latency_ms is not None) if measured.kind != "backchannel" else None,
        }
        got_cls = {"false_interruption": measured.false_interruption, "barge_in": measured.barge_in_success,
                   "backchannel": measured.backchannel_ok,
                   "response": (measured.latency_ms is not None) if measured.kind != "backchannel" else None}
        for k, want in true_cls.items():
            if want is None and got_cls[k] is None:
                continue
            self.classes[k][1] += 1
            if want == got_cls[k]:
                self.classes[k][0] += 1
            else:
                self.mismatches.append({"case": case, "call_id": measured.call_id, "turn": measured.turn,
                                        "what": k, "measured": got_cls[k], "truth": want})

    def report(self, transport: str, impairment: str | None, bounds: dict = DEFAULT_BOUNDS,
               cases: list[dict] | None = None, harness: dict | None = None) -> dict:
        metrics = {name: _stats(errs) for name, errs in self.errors.items()}
        net = {name: _stats(errs) for name, errs in self.net.items()}
        impaired = {name: _stats(errs) for name, errs in self.impaired.items()}
        added = {name: (float(np.median(v)) if v else None) for name, v in self.signed_by_metric.items()}
        offset = {name: _stats([abs(x - added[name]) for x in v]) for name, v in self.signed_by_metric.items()}
        added_latency = {name: (None if not v else {
            "median": round(added[name], 3), "p1": round(float(np.percentile(v, 1)), 3),
            "p99": round(float(np.percentile(v, 99)), 3), "spread_p99_ms": offset[name]["p99_abs_error_ms"]})
            for name, v in self.signed_by_metric.items()}
        tr = np.array(self.transport) if self.transport else np.zeros(1)
        overhead = {"median": round(float(np.median(tr)), 3), "p99": round(float(np.percentile(tr, 99)), 3),
                    "max": round(float(tr.max()), 3), "n": len(self.transport)}
        classification = {k: {"correct": c, "total": n} for k, (c, n) in self.classes.items()}
        checks = []
        for key, bound in bounds.items():
            if key == "classification":
                for k, v in classification.items():
                    acc = v["correct"] / v["total"] if v["total"] else None
                    checks.append({"check": f"classification.{k} accuracy >= {bound}", "value": acc,
                                   "pass": acc is not None and acc >= bound})
                continue
            table, metric, stat = key.split(".")
            if table == "raw" and impairment is not None and transport != "webrtc":
                table = "impaired"  # with a profile, "raw" means: measured = truth + what the path added
            stats = {"net": net, "offset": offset, "impaired": impaired}.get(table, metrics)[metric]
            value = stats[stat]
            if metric in ONLY_SOME_CASES and not stats["n"]:  # no case of this run produces it
                checks.append({"check": f"{table}.{metric}.{stat} <= {bound}", "value": None, "pass": True,
                               "note": "no samples: no case in this run marks content"})
                continue
            checks.append({"check": f"{table}.{metric}.{stat} <= {bound}", "value": value,
                           "pass": value is not None and value <= bound})
        signed = np.array(self.signed) if self.signed else np.zeros(1)
        slip = np.array(self.slip) if self.slip else np.zeros(1)
        ok = all(c["pass"] for c in checks) and not any(m["what"].startswith("oracle") for m in self.mismatches)
        return {"schema": CALIBRATION_SCHEMA, "transport": transport, "impairment": impairment,
                "metrics": metrics, "classification": classification,
                "metrics_net_of_transport": net, "transport_overhead_ms": overhead,
                "transport_added_ms": added_latency, "metrics_net_of_added_latency": offset,
                "metrics_net_of_impairment": impaired if impairment is not None else None,
                "impairment_added_ms": ({k: (round(float(np.median(v)), 3) if v else None)
                                         for k, v in self.impairment_added.items()} if impairment is not None else None),
                "excluded_for_loss": self.excluded, "turns_with_dead_air": self.gaps,
                "signed_latency_error_ms": {"median": round(float(np.median(signed)), 3),
                                            "p99": round(float(np.percentile(signed, 99)), 3)},
                "oracle_slip_ms": {"median": round(float(np.median(slip)), 3),
                                   "p99": round(float(np.percentile(slip, 99)), 3)},
                "latency_error_by_case_ms": {c: {"median": round(float(np.median(v)), 3),
                                                 "max": round(float(np.max(v)), 3), "n": len(v),
                                                 **({"net_p99": round(float(np.percentile(self.by_case_net[c], 99)), 3),
                                                     "net_max": round(float(np.max(self.by_case_net[c])), 3)}
                                                    if self.by_case_net.get(c) else {})}
                                             for c, v in self.by_case.items()},
                "bounds": checks, "mismatches": self.mismatches[:50], "cases": cases or [],
                "harness": harness, "pass": bool(ok)}
