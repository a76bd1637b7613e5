"""`turnbench bench capacity`: how many real-time callers one core sustains, per caller layout.

An engine process pinned to one core places N calls against the oracle agent pinned to the other
core; after ramp-up and a warm-up, a steady-state window measures the send lateness of every frame
and the engine's CPU. A level is sustained when lateness p99 ≤ 5 ms and CPU ≤ 90 %. The layouts
run interleaved in the same invocation, so their ratios are measured side by side on the same
noisy machine:
  naive     a pacing timer per call and the off-the-shelf client: aiohttp's WebSocket client, or
            aiortc's own media path (the straightforward prototypes)
  per-call  a pacing timer per call, the lean client
  shared    one metronome for all calls, the lean client (the default everywhere)
(The lean WebRTC client is aiortc for signalling, ICE, DTLS and SRTP, with turnbench's media path:
transports/webrtc_media.py.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.load.engine_config import EngineConfig

LATENESS_P99_MS, CPU_PCT = 5.0, 90.0
AGENT_BOUND_CPU_PCT = 90.0
"""The oracle's core this busy in a failed level: the agent, not the callers, ran out of CPU (it
then answers in bursts, which make the callers' frames late), so the level says nothing about
how many callers the engine's core carries."""
LAYOUTS = {"naive": ("per-call", {"ws-pcm": {"client": "aiohttp"}, "webrtc": {"media": "stock"}}),
           "per-call": ("per-call", {"ws-pcm": {"client": "lean"}, "webrtc": {"media": "lean"}}),
           "shared": ("shared", {"ws-pcm": {"client": "lean"}, "webrtc": {"media": "lean"}})}
"""layout → (pacing, transport options per transport)."""
DEFAULT_LEVELS = {"ws-pcm": [50, 100, 200, 300, 400, 500], "webrtc": [10, 20, 40, 60, 80]}
DEFAULT_RAMP_S = 8.0
"""Calls start evenly over about one turn cycle of `conversation`: started within a couple of
seconds they follow the script nearly in step (every agent replies at once, a herd)."""


@dataclass
class Level:
    layout: str
    callers: int
    calls_live: int
    frames: int
    send_lateness_ms_p50: float
    send_lateness_ms_p99: float
    cpu_pct: float
    cpu_pct_per_caller: float
    sustained: bool
    gc_pause_ms_max: float = 0.0
    """Longest garbage-collector pause in the window (a stall no frame can go out in)."""
    cpu_steal_pct: float | None = None
    """The machine's CPU time the hypervisor took in the window (a stall no process can help)."""
    preempted_per_s: float | None = None
    """How often the kernel ran something else on the engine's core while the engine could run."""
    agent_cpu_pct: float | None = None
    """The oracle agent's CPU in the same window (its own core)."""
    agent_cpu_pct_p90: float | None = None
    """p90 of the agent's CPU over the window's 1-second slices (its busy stretches)."""
    run: int = 0
    """Which of the level's repeats (`--repeat`) this measurement is."""

    @property
    def agent_bound(self) -> bool:
        """Not sustained while the agent's core was saturated: the agent was the bottleneck."""
        busiest = max(self.agent_cpu_pct or 0.0, self.agent_cpu_pct_p90 or 0.0)
        return not self.sustained and busiest >= AGENT_BOUND_CPU_PCT


def cores() -> tuple[int, int]:
    """(engine core, oracle core): two distinct CPUs this process may use."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise RuntimeError("bench capacity needs two cores (one for the callers, one for the oracle)")
    return cpus[0], cpus[1]


def process_cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) process `pid` has used so far (Linux), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


async def _cpu_over(pid: int | None, seconds: float) -> tuple[float | None, float | None]:
    """(mean, p90 of 1-second slices) of process `pid`'s CPU % over the next `seconds`."""
    from harness.load.engine import CpuMeter

    if not pid or process_cpu_s(pid) is None:
        await asyncio.sleep(seconds)
        return None, None
    meter = CpuMeter(lambda: process_cpu_s(pid))
    slices = asyncio.create_task(meter.run())
    try:
        await asyncio.sleep(seconds)
    finally:
        slices.cancel()
    mean, p90 = meter.mean_pct(), meter.p90_pct()
    return (None if mean is None else round(mean, 1)), (None if p90 is None else round(p90, 1))


def _pinned(cpu: int):
    return lambda: os.sched_setaffinity(0, {cpu})


@contextlib.asynccontextmanager
async def oracle_on(cpu: int, log: Path):
    """The oracle agent in its own process on `cpu`; yields its ready document (urls per transport)
    with its process id under `pid`."""
    from harness.agent.launch import agent_command, launched_agent
    async with launched_agent(agent_command(kind="--oracle"), log, 30.0, preexec_fn=_pinned(cpu),
                              label="the oracle agent") as agent:
        yield {"url": agent.url, "urls": agent.urls, "health": agent.health, "pid": agent.pid}


async def measure_level(config: EngineConfig, layout: str, callers: int, cpu: int, seconds: float,
                        warmup_s: float = 2.0, agent_pid: int | None = None,
                        ramp_s: float = DEFAULT_RAMP_S) -> Level:
    """One engine, `callers` calls started evenly over `ramp_s`, then a `seconds` window of
    steady state (with `agent_pid`, the agent's CPU in that window too)."""
    pacing, clients = LAYOUTS[layout]
    options = {**config.transport_options, **clients.get(config.transport, {})}
    cfg = EngineConfig(**{**asdict(config), "call_settings": {**config.call_settings, "pacing": pacing},
                          "transport_options": options})
    work = Path(tempfile.mkdtemp(prefix="turnbench-cap-"))
    (work / "c.json").write_text(cfg.to_json())
    sock = str(work / "e.sock")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "harness.load.engine", "--socket", sock, "--node", f"{layout}-{callers}",
        "--config", str(work / "c.json"), stdout=asyncio.subprocess.PIPE, preexec_fn=_pinned(cpu))
    t_start = time.perf_counter()

    def phase(what: str) -> None:
        if os.environ.get("TURNBENCH_BENCH_TRACE"):
            print(f"      {time.perf_counter() - t_start:6.2f} s  {what}", file=sys.stderr, flush=True)

    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 120)
        phase("engine ready")
        if line.strip() != b"ready":
            raise RuntimeError(f"engine did not start: {line.decode(errors='replace').strip()}")
        reader, writer = await asyncio.open_unix_connection(sock, limit=2**26)

        async def expect(op: str) -> dict:
            while True:
                msg = json.loads(await asyncio.wait_for(reader.readline(), 60))
                if msg.get("op") == op:
                    return msg

        await expect("ready")
        phase("connected")
        t0 = time.perf_counter()
        for i in range(callers):
            await asyncio.sleep(max(0.0, t0 + ramp_s * i / callers - time.perf_counter()))
            writer.write((json.dumps({"op": "call", "id": f"b{i:05d}", "index": i}) + "\n").encode())
            await writer.drain()
        phase("ramped")
        await asyncio.sleep(warmup_s)
        writer.write(b'{"op": "window_start"}\n')
        await writer.drain()
        await expect("window_started")
        agent = await _cpu_over(agent_pid, seconds)
        writer.write(b'{"op": "window_stats"}\n')
        await writer.drain()
        w = await expect("window")
        phase(f"window measured; worst lateness per 100 ms: {w.get('lateness_ms_max_per_100ms')}")
        writer.close()  # the engine hangs up every call and exits
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(proc.wait(), 60)
        phase(f"engine exited ({proc.returncode})")
    finally:
        if proc.returncode is None:
            proc.kill()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(proc.wait(), 10)
    ok = w["send_lateness_ms_p99"] <= LATENESS_P99_MS and w["cpu_pct"] <= CPU_PCT and w["calls_live"] == callers
    return Level(layout, callers, w["calls_live"], w["frames"], w["send_lateness_ms_p50"], w["send_lateness_ms_p99"],
                 w["cpu_pct"], round(w["cpu_pct"] / max(1, callers), 4), ok,
                 max((g["max_ms"] for g in w.get("gc", {}).values()), default=0.0), w.get("cpu_steal_pct"),
                 w.get("preempted_per_s"), *agent)


def verdicts(levels: list[Level]) -> dict[tuple[str, int], dict]:
    """Per (layout, callers): its runs, how many held, and whether the level is sustained: by most
    of its runs (on a shared machine one run can meet a neighbour's burst, another not), with the
    median CPU per caller of those runs."""
    out: dict[tuple[str, int], dict] = {}
    for x in levels:
        out.setdefault((x.layout, x.callers), {"runs": []})["runs"].append(x)
    for v in out.values():
        runs = v["runs"]
        v["held"] = sum(x.sustained for x in runs)
        v["sustained"] = 2 * v["held"] > len(runs)
        v["cpu_pct_per_caller"] = round(float(statistics.median(x.cpu_pct_per_caller for x in runs)), 4)
        failed = [x for x in runs if not x.sustained]
        v["agent_bound"] = bool(failed) and all(x.agent_bound for x in failed)
    return out


def capacity_document(transport: str, levels: list[Level], meta: dict) -> dict:
    """Per layout: the highest sustained level (by most of its runs), CPU per caller; and shared ÷
    the baseline layout (naive if it ran, else per-call)."""
    out: dict = {"schema": "turnbench.capacity/1", "transport": transport,
                 "levels": [{**asdict(x), "agent_bound": x.agent_bound} for x in levels],
                 "bounds": {"send_lateness_ms_p99": LATENESS_P99_MS, "cpu_pct": CPU_PCT}, **meta}
    by = verdicts(levels)
    best: dict[str, dict] = {}
    for layout in sorted({x.layout for x in levels}):
        mine = sorted((n, v) for (lay, n), v in by.items() if lay == layout)
        ok = [(n, v) for n, v in mine if v["sustained"]]
        top = ok[-1] if ok else None
        per = top[1]["cpu_pct_per_caller"] if top else None
        failed = next(((n, v) for n, v in mine if not v["sustained"]), None)
        # callers one core could carry at the per-caller CPU cost measured at the largest sustained level
        best[layout] = {"sustained_callers": top[0] if top else 0,
                        "runs_held": f"{top[1]['held']}/{len(top[1]['runs'])}" if top else None,
                        "cpu_pct_per_caller": per,
                        "callers_per_core_at_90pct_cpu": round(CPU_PCT / per) if per else None,
                        "first_failed": failed[0] if failed else None,
                        "first_failed_runs_held": f"{failed[1]['held']}/{len(failed[1]['runs'])}" if failed else None,
                        "first_failed_agent_bound": failed[1]["agent_bound"] if failed else None}
    out["layouts"] = best
    base = "naive" if "naive" in best else "per-call"
    if "shared" in best and base in best:
        a, b = best["shared"], best[base]
        common = sorted({n for lay, n in by if lay == "shared"} & {n for lay, n in by if lay == base})
        at = common[-1] if common else None
        shared_cost = by[("shared", at)]["cpu_pct_per_caller"] if at else None
        out["ratios"] = {
            "baseline": base,
            "sustained_callers": round(a["sustained_callers"] / b["sustained_callers"], 2) if b["sustained_callers"] else None,
            "cpu_per_caller_baseline_over_shared": (round(by[(base, at)]["cpu_pct_per_caller"] / shared_cost, 2)
                                                    if shared_cost else None),
            "at_callers": at}
    return out


def capacity_table(doc: dict) -> str:
    runs = max((x.get("run", 0) for x in doc["levels"]), default=0) > 0
    lines = [f"{'layout':>9} {'callers':>7}{' run' if runs else ''} {'live':>5} {'lateness p50':>12} {'p99':>8} "
             f"{'CPU %':>6} {'CPU %/caller':>12} {'GC max':>8} {'agent CPU % (p90)':>17}  sustained"]
    for x in doc["levels"]:
        run = format(x.get("run", 0) + 1, ">4") if runs else ""
        lines.append(f"{x['layout']:>9} {x['callers']:>7}{run} {x['calls_live']:>5} {x['send_lateness_ms_p50']:>9.2f} ms "
                     f"{x['send_lateness_ms_p99']:>5.2f} ms {x['cpu_pct']:>6.1f} {x['cpu_pct_per_caller']:>12.3f} "
                     f"{x.get('gc_pause_ms_max', 0):>5.1f} ms "
                     f"{'-' if x.get('agent_cpu_pct') is None else format(x['agent_cpu_pct'], '.1f'):>5}"
                     f"{'' if x.get('agent_cpu_pct_p90') is None else ' / ' + format(x['agent_cpu_pct_p90'], '.0f'):>6}  "
                     f"{'yes' if x['sustained'] else 'NO (agent-bound)' if x.get('agent_bound') else 'NO'}")
    for layout, b in doc["layouts"].items():
        lines.append(f"{layout}: {b['sustained_callers']} callers sustained on one core "
                     + (f"(in {b['runs_held']} runs; " if runs and b.get("runs_held") else "(")
                     + f"{b['cpu_pct_per_caller']} % CPU each; ≈ {b['callers_per_core_at_90pct_cpu']} at 90 % CPU)"
                     + (f"; {b['first_failed']} held in {b['first_failed_runs_held']} runs"
                        if runs and b.get("first_failed") else "")
                     + (f"; at {b['first_failed']} the oracle agent's core was saturated (≥ {AGENT_BOUND_CPU_PCT:.0f} %): "
                        "the agent, not the callers, set that limit" if b.get("first_failed_agent_bound") else ""))
    if doc.get("ratios"):
        r = doc["ratios"]
        lines.append(f"shared ÷ {r['baseline']}: sustained callers × {r['sustained_callers']}; CPU per caller at "
                     f"{r['at_callers']} callers: {r['baseline']} costs × {r['cpu_per_caller_baseline_over_shared']}")
    return "\n".join(lines)
