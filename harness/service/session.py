"""A whole benchmark: calls → turns.jsonl as they complete → summary.json, with progress."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from harness.caller.runner import RunOutcome, RunSpec, run_calls
from harness.metrics.summary import summarize
from harness.metrics.turns import TurnResult
from harness.results.folder import RunFolder, now_iso
from harness.service.finish import apply_thresholds


async def benchmark(spec: RunSpec, folder: RunFolder, meta: dict, scenario_label: str, target_label: str,
                    progress: Callable[[int, float | None], None] = lambda done, p50: None,
                    thresholds: list[str] = ()) -> tuple[dict, RunOutcome]:
    """Run the calls, writing every turn as soon as its call is measured; return the summary."""
    rows: list[dict] = []
    folder.write_json("run.json", {**meta, "status": "running"})

    def on_turns(results: list[TurnResult]) -> None:
        batch = [r.to_json() for r in results]
        folder.append_turns(batch)
        rows.extend(batch)

    def on_call_done(outcome: RunOutcome) -> None:
        lat = [r["latency_ms"] for r in rows if r["latency_ms"] is not None]
        progress(outcome.calls_done, float(np.median(lat)) if lat else None)

    outcome = await run_calls(spec, on_turns, on_call_done, on_call_timeline=folder.append_timeline)
    health = outcome.harness_health()
    summary = summarize(rows, calls=spec.calls, target=target_label, transport=spec.transport,
                        scenario=scenario_label, harness=health, call_errors=outcome.call_errors)
    label_providers(summary, meta.get("agent"))
    summary["impairment"] = spec.impairment.to_json() if spec.impairment is not None else None
    apply_thresholds(summary, thresholds)
    if outcome.interrupted:
        summary["notes"].append(f"interrupted: {outcome.calls_done} of {spec.calls} calls completed")
    folder.write_json("summary.json", summary)
    folder.write_json("run.json", {**meta, "status": "interrupted" if outcome.interrupted else "completed",
                                   "ended_at": now_iso(), "harness": health,
                                   "calls_completed": outcome.calls_done, "turns_written": folder.turns_written})
    folder.close()
    return summary, outcome


def label_providers(summary: dict, agent: dict | None) -> None:
    """Name the agent's providers in the summary, and say loudly which of them are simulated."""
    providers = (agent or {}).get("providers")
    if not providers:
        return
    summary["providers"] = providers
    sims = sorted(p["name"] for p in providers.values() if p.get("simulated"))
    summary["simulated_providers"] = sims
    if sims:
        summary["notes"].append(f"SIMULATED providers: {', '.join(sims)}: their latencies are drawn from "
                                "published figures, not measured from real models")
