"""`turnbench bench …`: performance benchmarks of turnbench itself, measured side by side."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import click

from harness.audio.fixtures import FixtureLibrary
from harness.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Finite, fail
from harness.cli.options import fixtures_option
from harness.load.capacity import DEFAULT_RAMP_S
from harness.load.sweep import parse_levels
from harness.resources import resolve_scenario
from harness.scenario import load_scenario


@click.group()
def bench() -> None:
    """Benchmarks of turnbench itself (ratios measured side by side in one run)."""


@bench.command()
@click.option("--transport", type=click.Choice(["ws-pcm", "webrtc"]), default="ws-pcm", show_default=True,
              help="Wire protocol of the callers.")
@click.option("--callers", "levels", default=None, metavar="N1,N2,…",
              help="Caller counts to try, increasing (default ws-pcm 50…500, webrtc 10…80).")
@click.option("--layouts", default="naive,shared", show_default=True,
              help="Caller layouts to compare: naive (a timer per call and the off-the-shelf client: aiohttp's "
                   "WebSocket client, or aiortc's own media path: the prototype), per-call (a timer per call, "
                   "the lean client), shared (one metronome, the lean client).")
@click.option("--seconds", type=Finite(min=2, max=3600), default=10.0, show_default=True,
              help="Steady-state window per level (after the ramp and a 2 s warm-up).")
@click.option("--ramp-s", type=Finite(min=0, max=3600), default=DEFAULT_RAMP_S, show_default=True,
              help="Calls start evenly over this long. Short: the calls follow the script nearly in step "
                   "(every agent replies at once: a herd, the worst case); about one turn cycle (8 s): "
                   "a steady mix of talking and listening calls, as under real arrivals.")
@click.option("--repeat", type=click.IntRange(min=1), default=1, show_default=True,
              help="Measure each level this many times (interleaved with the other layouts); a level is "
                   "sustained when most of its runs held (a shared machine's neighbours can spoil one run).")
@click.option("--scenario", default="conversation", show_default=True,
              help="What every caller says (long calls keep every caller live through the window).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the result document (turnbench.capacity/1) here.")
@fixtures_option
def capacity(transport: str, levels: str | None, layouts: str, seconds: float, ramp_s: float, repeat: int,
             scenario: str, json_out: Path | None, fixtures_dir: Path | None) -> None:
    """How many real-time callers one core sustains (send lateness p99 <= 5 ms, CPU <= 90 %),
    with the callers' engine pinned to one core and the oracle agent to another.

    Each layout is tried at rising caller counts (the layouts interleaved level by level) until
    one fails (in most of its `--repeat` runs); the table gives lateness, CPU and CPU per caller
    per run, and the ratio between the layouts measured in this run.
    """
    from harness.load.capacity import (
        DEFAULT_LEVELS,
        LAYOUTS,
        Level,
        capacity_document,
        capacity_table,
        cores,
        measure_level,
        oracle_on,
        verdicts,
    )
    from harness.load.engine_config import EngineConfig
    try:
        counts = parse_levels(levels) if levels else DEFAULT_LEVELS[transport]
        engine_cpu, oracle_cpu = cores()
    except (ValueError, RuntimeError) as e:
        fail(str(e).replace("--concurrency", "--callers"), EXIT_USAGE)
    names = [x.strip() for x in layouts.split(",") if x.strip()]
    bad = [x for x in names if x not in LAYOUTS]
    if bad or not names:
        fail(f"--layouts {layouts!r}: expected some of {', '.join(LAYOUTS)}")
    lib = FixtureLibrary.load(fixtures_dir)
    loaded = load_scenario(resolve_scenario(scenario), lib)
    results: list[Level] = []
    os.sched_setaffinity(0, {oracle_cpu})  # this process's own work stays off the engine's core

    async def go() -> dict:
        log = Path("reports") / "bench-capacity-oracle.log"
        log.parent.mkdir(exist_ok=True)
        async with oracle_on(oracle_cpu, log) as ready:
            url = ready.get("urls", {}).get(transport) or ready["url"]
            cfg = EngineConfig(scenario_path=str(loaded.path), fixtures_dir=str(lib.directory), target_url=url,
                               transport=transport,
                               call_settings={"hints": True, "seed": 0}, call_id_in_url=True,
                               scenario_sha256=loaded.sha256, fixtures_digest=lib.digest(), scenario_label="capacity")
            active = list(names)
            for n in counts:  # layouts interleaved per level: both see the same machine, minutes apart at most
                for run in range(repeat):
                    for layout in active:
                        click.echo(f"  {layout}: {n} callers{f' (run {run + 1}/{repeat})' if repeat > 1 else ''} …",
                                   err=True)
                        lv = await measure_level(cfg, layout, n, engine_cpu, seconds,
                                                 agent_pid=ready.get("pid"), ramp_s=ramp_s)
                        lv.run = run
                        results.append(lv)
                        click.echo(f"    lateness p99 {lv.send_lateness_ms_p99:.2f} ms, CPU {lv.cpu_pct:.0f} %, "
                                   f"longest GC pause {lv.gc_pause_ms_max:.1f} ms, steal {lv.cpu_steal_pct} %, "
                                   f"preempted {lv.preempted_per_s}/s, "
                                   f"agent CPU {lv.agent_cpu_pct} % (p90 {lv.agent_cpu_pct_p90}), {lv.calls_live} live → "
                                   f"{'sustained' if lv.sustained else 'NOT sustained'}"
                                   f"{' (agent-bound: the oracle ran out of CPU)' if lv.agent_bound else ''}", err=True)
                held = verdicts(results)
                active = [x for x in active if held[(x, n)]["sustained"]]
                if not active:
                    break
        return capacity_document(transport, results, {"seconds": seconds, "ramp_s": ramp_s,
                                                      "scenario": loaded.scenario.name,
                                                      "engine_cpu": engine_cpu, "oracle_cpu": oracle_cpu})

    doc = asyncio.run(go())
    click.echo(capacity_table(doc))
    if json_out is not None:
        import json
        json_out.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n")
    raise SystemExit(EXIT_OK if any(b["sustained_callers"] for b in doc["layouts"].values()) else EXIT_FAILED)


# -- component benchmarks: one stage's providers side by side ---------------------------------


def _component_options(stage: str, default: str, rounds: int):
    def decorate(func):
        func = click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
                            help="Also write the result document (turnbench.component/1) here.")(func)
        func = click.option("--rounds", type=click.IntRange(1, 100), default=rounds, show_default=True,
                            help="Passes over the inputs; providers interleaved input by input.")(func)
        func = click.option("--provider-opt", "provider_opts", multiple=True, metavar="NAME.KEY=VALUE",
                            help="A constructor option of one provider (repeatable), e.g. piper.length_scale=1.1.")(func)
        return click.option(f"--{stage}", "names", default=default, show_default=True, metavar="NAME,…",
                            help=f"{stage} providers to compare (registered names; the first is the reference "
                                 "the ratios are to).")(func)
    return decorate


def _providers(stage: str, names: str, provider_opts: tuple[str, ...]) -> dict:
    from harness.agent.providers import ProviderUnavailable, create
    from harness.agent.providers.registry import parse_provider_opts
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    if not wanted:
        fail(f"--{stage}: name at least one provider", EXIT_USAGE)
    options = parse_provider_opts(provider_opts, tuple(wanted), "NAME")
    out = {}
    for name in wanted:
        click.echo(f"loading {stage} {name} …", err=True)
        try:
            p = create(stage, name, **options.get(name, {}))
        except ProviderUnavailable as e:
            fail(str(e), EXIT_USAGE)
        p.warm()
        out[name] = p
    return out


def _finish(stage: str, samples, rounds: int, inputs: int, json_out: Path | None, columns: list[tuple[str, str]]) -> None:
    import json

    from harness.components.measure import document
    from harness.results.folder import machine_info
    doc = document(stage, samples, rounds, inputs, machine_info())
    click.echo(f"{stage} providers, {inputs} inputs × {rounds} rounds ({doc['note']}):")
    for name, m in doc["providers"].items():
        parts = []
        for metric, label in columns:
            s = m.get(metric)
            parts.append(f"{label} P50 {s['p50']:g} P90 {s['p90']:g}" if s else f"{label} —")
        ratio = m.get(next(k for k in m if k.startswith("p50_ratio_to_")), {})
        lead = ", ".join(f"{k} ×{v:g}" for k, v in ratio.items()) if name != next(iter(doc["providers"])) else "reference"
        click.echo(f"  {name:14} " + "; ".join(parts) + f"  [{lead}]")
    if json_out is not None:
        json_out.write_text(json.dumps(doc, indent=1))
        click.echo(f"wrote {json_out}", err=True)


def _progress(label: str):
    def tick(done: int, total: int) -> None:
        if done == total or done % 5 == 0:
            click.echo(f"\r{label}: {done}/{total}", err=True, nl=done == total)
    return tick


@bench.command()
@_component_options("tts", "piper,espeak", 3)
def tts(names: str, provider_opts: tuple[str, ...], rounds: int, json_out: Path | None) -> None:
    """TTS providers on the same agent replies: time to first audio, real-time factor."""
    from harness.components.measure import TTS_TEXTS, interleaved, tts_sample
    providers = _providers("tts", names, provider_opts)
    samples = interleaved(providers, [(t, t) for t in TTS_TEXTS], rounds, tts_sample, _progress("tts"))
    _finish("tts", samples, rounds, len(TTS_TEXTS), json_out,
            [("first_audio_ms", "first audio (ms)"), ("rtf", "RTF")])


@bench.command()
@_component_options("stt", "pocketsphinx,whisper", 1)
@click.option("--limit", type=click.IntRange(1, 1000), default=None, help="At most this many fixture utterances.")
@fixtures_option
def stt(names: str, provider_opts: tuple[str, ...], rounds: int, json_out: Path | None, limit: int | None,
        fixtures_dir: Path | None) -> None:
    """STT providers on the fixture utterances: time to final after end of speech, feed cost per
    20 ms frame, partial stability, WER."""
    import numpy as np

    from harness.audio.frames import SAMPLE_RATE
    from harness.components.measure import interleaved, stt_sample
    lib = FixtureLibrary.load(fixtures_dir)
    utts = [f for f in lib.fixtures.values() if f.kind in ("utterance", "paused") and f.text][:limit]
    if not utts:
        fail(f"{lib.directory}: no utterance fixtures", EXIT_USAGE)
    providers = _providers("stt", names, provider_opts)
    inputs = [(f.id, (np.asarray(f.samples), int(f.segments[-1][1] * SAMPLE_RATE), f.text)) for f in utts]
    samples = interleaved(providers, inputs, rounds, lambda p, it: stt_sample(p, *it), _progress("stt"))
    _finish("stt", samples, rounds, len(inputs), json_out,
            [("final_after_eos_ms", "final after EOS (ms)"), ("partial_stability", "stability"), ("wer", "WER")])


@bench.command()
@_component_options("llm", "llama", 3)
def llm(names: str, provider_opts: tuple[str, ...], rounds: int, json_out: Path | None) -> None:
    """LLM providers on fixed prompts: time to first token, tokens per second."""
    from harness.components.measure import LLM_PROMPTS, run_llm
    providers = _providers("llm", names, provider_opts)
    samples = run_llm(providers, LLM_PROMPTS, rounds, _progress("llm"))
    _finish("llm", samples, rounds, len(LLM_PROMPTS), json_out,
            [("first_token_ms", "first token (ms)"), ("tokens_per_s", "tokens/s")])
