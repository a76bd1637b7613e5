"""A load run's folder → summary.json: the same summary as `turnbench run`, plus what load adds
(engines' health, offered vs achieved arrivals, lost turns)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from harness.load.collector import CALLS_FILE, ENGINES_FILE
from harness.metrics.compare import SAMPLE_FIELDS
from harness.metrics.stats import percentile_summary
from harness.metrics.summary import summarize
from harness.results.folder import read_rows


def _jsonl(path: Path) -> list[dict]:
    return read_rows(path, missing_ok=True)


def failure_reason(row: dict) -> str | None:
    """Why a turn counts as a Locust failure, or None."""
    if row.get("error"):
        return f"call error: {row['error']}"
    if row.get("false_interruption"):
        return f"false interruption at {row.get('false_interruption_at_ms')} ms"
    if row.get("barge_in_success") is False:
        stop = row.get("barge_in_stop_ms")
        return "barge-in failed: " + ("agent did not stop" if stop is None else f"stopped after {stop:.0f} ms")
    if row.get("backchannel_ok") is False:
        return "backchannel: the agent stopped talking"
    if row.get("no_response"):
        return "no response"
    return None


def merged_health(engines: dict[str, dict | None]) -> dict:
    """The run's harness health: the worst engine decides (one saturated engine taints its calls)."""
    hs = [h for h in engines.values() if h]
    if not hs:
        return {"send_lateness_ms_p50": None, "send_lateness_ms_p99": None, "loop_lag_ms_p99": None,
                "overloaded": True, "overloaded_why": ["no engine reported its health"], "engines": 0}

    def worst(key: str):
        vals = [h.get(key) for h in hs if h.get(key) is not None]
        return max(vals) if vals else None

    why = [f"{h['node']}: {w}" for h in hs for w in h.get("overloaded_why") or []]
    lost = [h["node"] for h in hs if h.get("lost")]
    why += [f"{n}: engine went away before it drained" for n in lost]
    return {"send_lateness_ms_p50": worst("send_lateness_ms_p50"), "send_lateness_ms_p99": worst("send_lateness_ms_p99"),
            "loop_lag_ms_p99": worst("loop_lag_ms_p99"), "cpu_pct_p90": worst("cpu_pct_p90"),
            "cpu_steal_pct": worst("cpu_steal_pct"), "recv_jitter_ms_p99": worst("recv_jitter_ms_p99"),
            "frames": sum(h.get("frames") or 0 for h in hs),
            "overloaded": bool(why), "overloaded_why": why, "engines": len(hs),
            "budget": hs[0].get("budget")}


def arrivals_summary(engines: dict[str, dict | None], rows: list[dict], mode: str, duration_s: float,
                     rate_per_s: float | None) -> dict:
    """Offered against achieved load; for open loop, how late calls started against their schedule."""
    calls = {r["call_id"]: r.get("start_lag_ms") for r in rows}
    lags = [v for v in calls.values() if v is not None]
    out = {"mode": mode, "duration_s": duration_s, "calls_started": len(calls),
           "achieved_calls_per_s": round(len(calls) / duration_s, 4) if duration_s else None}
    if mode == "open":
        arr = [h.get("arrivals") or {} for h in engines.values() if h]
        offered = sum(a.get("offered", 0) for a in arr)
        out.update(offered_calls_per_s=rate_per_s, offered=offered, started=sum(a.get("started", 0) for a in arr),
                   dropped=sum(a.get("dropped", 0) for a in arr), process=next((a.get("process") for a in arr), None),
                   start_lag_ms=percentile_summary(lags, seed=11) if lags else None)
    return out


def error_against_truth(rows: list[dict], truth: dict[tuple[str, int], dict]) -> dict:
    """|measured − the oracle's own account| per metric, over the turns both have (raw: loopback included)."""
    out = {}
    for name in SAMPLE_FIELDS:
        errs = [abs(r[name] - truth[(r["call_id"], r["turn"])][name]) for r in rows
                if r.get(name) is not None and (r["call_id"], r["turn"]) in truth
                and truth[(r["call_id"], r["turn"])].get(name) is not None]
        out[name] = None if not errs else {"median_abs_error_ms": round(float(np.median(errs)), 3),
                                           "p99_abs_error_ms": round(float(np.percentile(errs, 99)), 3),
                                           "max_abs_error_ms": round(float(max(errs)), 3), "n": len(errs)}
    return out


def load_summary(folder: Path, *, target: str, transport: str, scenario: str, turns_per_call: int, load: dict,
                 truth: dict[tuple[str, int], dict] | None = None) -> dict:
    """Summarise what the collector wrote; count turns lost (a finished call with fewer rows than planned)."""
    rows = _jsonl(folder / "turns.jsonl")
    calls = _jsonl(folder / CALLS_FILE)
    engines_doc = json.loads((folder / ENGINES_FILE).read_text()) if (folder / ENGINES_FILE).exists() else {}
    engines = engines_doc.get("engines") or {}
    health = merged_health(engines)
    finished = [c for c in calls if not c.get("abandoned")]
    errors = [c["error"] for c in calls if c.get("error")]
    s = summarize(rows, calls=len(calls), target=target, transport=transport, scenario=scenario, harness=health,
                  call_errors=errors)
    lost = sum(max(0, turns_per_call - c["turns"]) for c in finished)
    abandoned = sum((h or {}).get("abandoned") or 0 for h in engines.values())
    s["engines"] = engines
    s["arrivals"] = arrivals_summary(engines, rows, load.get("mode", "closed"), load.get("duration_s") or 0,
                                     load.get("arrival_rate_per_s"))
    s["load"] = {**load, "calls_finished": len(finished), "calls_abandoned": abandoned, "turns_per_call": turns_per_call,
                 "turns_expected": len(finished) * turns_per_call, "turns_lost": lost}
    s["measurement_error_ms"] = error_against_truth(rows, truth) if truth else None
    if health["overloaded"]:
        s["notes"].append("harness overloaded: " + "; ".join(health["overloaded_why"]) +
                          " — these numbers measure the load generator, not only the agent")
    if lost:
        s["notes"].append(f"{lost} turns lost: finished calls wrote fewer turns than the scenario has")
    if abandoned:
        s["notes"].append(f"{abandoned} calls were still in flight at the drain deadline; their closed turns are kept")
    dropped = s["arrivals"].get("dropped")
    if dropped:
        s["notes"].append(f"{dropped} arrivals were not placed: more than --max-in-flight calls were in flight")
    lag = (s["arrivals"].get("start_lag_ms") or {}).get("p99")
    if lag is not None and lag > 50:
        s["notes"].append(f"calls started up to {lag:.0f} ms (p99) after their intended start: the offered load "
                          "was not met on time")
    return s


class TurnsTail:
    """Progress from a growing turns.jsonl, reading only what was appended since the last look
    (the parent process may host the oracle: it must not stall parsing the whole file)."""

    def __init__(self, path: Path, keep: int = 2000):
        self.path, self.keep = path, keep
        self.turns, self._offset, self._partial = 0, 0, b""
        self._latencies: list[float] = []

    def poll(self) -> tuple[int, float | None]:
        """(turns so far, median latency of the last `keep` turns)."""
        try:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except OSError:
            return self.turns, None
        self._offset += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            if line.strip():
                self.turns += 1
                lat = json.loads(line).get("latency_ms")
                if lat is not None:
                    self._latencies.append(lat)
        del self._latencies[:-self.keep]
        return self.turns, (float(np.median(self._latencies)) if self._latencies else None)
