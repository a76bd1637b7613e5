"""`turnbench agent serve`: run a built-in agent as a server."""

from __future__ import annotations

import asyncio
import json
import signal
from dataclasses import dataclass
from pathlib import Path

import click
from pydantic import ValidationError

from harness.agent.oracle_config import OracleConfig
from harness.cli.common import EXIT_USAGE, Finite, fail
from harness.cli.options import option_group


def _oracle_options(func):
    """One --flag per OracleConfig field, with the field's description as its help."""
    for name, f in reversed(list(OracleConfig.model_fields.items())):
        flag = "--" + name.replace("_", "-")
        help_text = (f.description or name) + (f" [default: {f.default}]" if f.default is not None else "")
        if f.annotation is bool:
            func = click.option(f"{flag}/--no-{name.replace('_', '-')}", name, default=None, help=help_text)(func)
        else:
            func = click.option(flag, name, default=None, type=str, help=help_text)(func)
    return func


@dataclass(frozen=True)
class ReferenceOptions:
    """How `agent serve --reference` builds its pipeline (one option group)."""

    vad: str
    stt: str
    llm: str
    tts: str
    llm_url: str | None
    turn: str
    eot_silence_ms: float
    mode: str
    speculative: bool
    speculate_after_ms: float
    first_chunk_words: int
    barge_in_ms: float
    llm_hedge: int
    preload: int
    tools: str
    tool_latency: str
    tool_error_rate: float
    tool_fillers: str
    tool_prefetch: bool
    provider_opts: tuple[str, ...]

    def provider_options(self) -> dict[str, dict]:
        """Each stage's constructor options: --provider-opt, with --llm-url and --eot-silence-ms
        as shorthands for llm.base_url and turn.silence_ms."""
        from harness.agent.providers.registry import parse_provider_opts
        options = parse_provider_opts(self.provider_opts)
        if self.llm_url:
            options.setdefault("llm", {}).setdefault("base_url", self.llm_url)
        if self.turn == "vad":
            options.setdefault("turn", {}).setdefault("silence_ms", self.eot_silence_ms)
        return options


reference_options = option_group([
    click.option("--vad", default="silero", show_default=True, help="Reference agent: VAD provider."),
    click.option("--stt", default="pocketsphinx", show_default=True,
                 help="Reference agent: STT provider: pocketsphinx (streaming), whisper (faster-whisper tiny.en), sim."),
    click.option("--llm", default="llama", show_default=True,
                 help="Reference agent: LLM provider: llama (SmolLM2 on llama-cpp-python), openai (with --llm-url), sim."),
    click.option("--tts", default="piper", show_default=True, help="Reference agent: TTS provider: piper, sim, or any registered one."),
    click.option("--provider-opt", "provider_opts", multiple=True, metavar="STAGE.KEY=VALUE",
                 help="Reference agent: a constructor option of a stage's provider (repeatable), e.g. "
                      "llm.model=qwen, stt.beam_size=2; values that read as JSON are typed. Providers, "
                      "turnbench's and third parties', are entry points of the `turnbench.providers` group."),
    click.option("--llm-url", default=None, metavar="URL",
                 help="Reference agent with --llm openai: base URL of an OpenAI-compatible server, e.g. "
                      "http://127.0.0.1:8000/v1 (vLLM, Ollama, llama.cpp server); key from OPENAI_API_KEY."),
    click.option("--turn", default="vad", show_default=True,
                 help="Reference agent: turn detection. vad = end after --eot-silence-ms of silence; semantic = "
                      "pitch/energy and transcript cues end complete phrases sooner and unfinished ones later; "
                      "smart = semantic plus an audio end-of-turn model (Smart Turn v3), ending complete "
                      "turns after 200 ms of silence."),
    click.option("--eot-silence-ms", type=Finite(min=50, max=60_000), default=600.0, show_default=True,
                 help="Reference agent, --turn vad: silence that ends the caller's turn."),
    click.option("--pipeline", "mode", type=click.Choice(["streaming", "batch"]), default="streaming",
                 show_default=True,
                 help="Reference agent: streaming (every stage feeds the next as it goes) or batch (whole "
                      "transcript, whole LLM answer, whole TTS audio, then play: the classic baseline)."),
    click.option("--speculative/--no-speculative", default=True, show_default=True,
                 help="Reference agent, streaming: start the LLM on a stable partial transcript before the "
                      "turn is confirmed (discarded if the transcript changes)."),
    click.option("--speculate-after-ms", type=Finite(min=0, max=60_000), default=60.0,
                 show_default=True,
                 help="Reference agent, --speculative: silence (with the partial transcript unchanged) after which "
                      "the reply is begun speculatively."),
    click.option("--first-chunk-words", type=click.IntRange(1, 50), default=3, show_default=True,
                 help="Reference agent: the reply's first chunk goes to TTS after this many words even without "
                      "punctuation (fewer: first audio sooner, and a shorter first chunk to cover the next)."),
    click.option("--barge-in-ms", type=Finite(min=20, max=60_000), default=220.0, show_default=True,
                 help="Reference agent: speech over the agent for this long, with a content word in its partial "
                      "transcript, interrupts it (lower stops sooner and mistakes more backchannels for barge-ins)."),
    click.option("--tools", type=click.Choice(["off", "on"]), default="off", show_default=True,
                 help="Reference agent: tool calls to a simulated CRM/scheduling backend on turns that ask for "
                      "a lookup (orders, bookings, invoices, flights; the caller's profile is prefetched)."),
    click.option("--tool-latency", default="lognormal:120:600", show_default=True, metavar="DIST",
                 help="Reference agent, --tools on: each backend call's latency in ms: lognormal:MEDIAN:P99, "
                      "uniform:A:B, or a number."),
    click.option("--tool-error-rate", type=Finite(min=0, max=1), default=0.0, show_default=True,
                 help="Reference agent, --tools on: fraction of backend calls that fail."),
    click.option("--tool-fillers", type=click.Choice(["ack+bridge", "ack", "none"]), default="ack+bridge",
                 show_default=True,
                 help="Reference agent, --tools on: while a call runs, say an acknowledgement and bridging lines "
                      "for as long as it lasts (ack+bridge), the acknowledgement only (ack), or nothing (none)."),
    click.option("--tool-prefetch/--no-tool-prefetch", default=True, show_default=True,
                 help="Reference agent, --tools on: fetch the caller's profile when the call starts."),
    click.option("--llm-hedge", type=click.IntRange(1, 4), default=1, show_default=True,
                 help="Reference agent: race this many LLM requests per reply; the first token wins."),
    click.option("--preload", type=click.IntRange(1, 64), default=1, show_default=True,
                 help="Reference agent: model sets to load before serving (one per call in flight; more are "
                      "loaded on demand, which delays that call's first frames)."),
], {"ref": lambda v: ReferenceOptions(**v)})


@click.group()
def agent() -> None:
    """Built-in agents: the reference streaming agent and the oracle (programmed behaviour, for calibration)."""


@agent.command()
@click.option("--oracle", is_flag=True, help="Serve the oracle agent (answers with exactly programmed behaviour).")
@click.option("--reference", is_flag=True,
              help="Serve the reference streaming agent (Silero VAD → pocketsphinx → SmolLM2 → Piper, offline).")
@reference_options
@click.option("--ready-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write {url, health} as JSON to this file once listening (how `turnbench run` waits).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--token", envvar="TURNBENCH_AGENT_TOKEN", default=None, metavar="TOKEN",
              help="Every route but /health then wants `Authorization: Bearer TOKEN` (or `?token=TOKEN`); callers "
                   "give it with `--agent-token`. Default: $TURNBENCH_AGENT_TOKEN.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0 = any free port).")
@click.option("--log", "log_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Oracle: append its ground truth (one JSON line per caller turn) to this file. Reference: "
                   "append every event it sends (one JSON line each, with the call and perf_counter_ns).")
@_oracle_options
def serve(oracle: bool, reference: bool, ref: ReferenceOptions, ready_file: Path | None, host: str,
          token: str | None, port: int, log_path: Path | None, **fields) -> None:
    """Serve an agent over ws-pcm at ws://HOST:PORT/ws until Ctrl-C.

    --oracle is driven by turnbench's `turnbench.hint` events (which stream samples are
    speech): call it with `turnbench run SCENARIO --target ws://HOST:PORT/ws --hints`. With
    --listen it finds any caller's speech itself (a sample at --listen-level-dbfs or above is
    speech; --listen-hangover-ms without one ends it) and --log F records its ground truth per
    turn, to score any tool against (benchmarks/score_against_oracle.py).
    --reference is a real agent: `turnbench run SCENARIO --target ws://HOST:PORT/ws`.
    """
    if oracle == reference:
        fail("choose one of --oracle or --reference", EXIT_USAGE)
    if reference:
        options = ref.provider_options()
        if ref.llm == "openai" and "base_url" not in options.get("llm", {}):
            fail("--llm openai needs --llm-url (the server's base URL, e.g. http://127.0.0.1:8000/v1)", EXIT_USAGE)
        from harness.agent.pipeline import PipelineConfig
        from harness.agent.tools import ToolConfig
        try:
            tool_cfg = ToolConfig(enabled=ref.tools == "on", latency=ref.tool_latency,
                                  error_rate=ref.tool_error_rate, fillers=ref.tool_fillers, prefetch=ref.tool_prefetch)
        except ValueError as e:
            fail(f"--tool-latency: {e}", EXIT_USAGE)
        cfg = PipelineConfig(mode=ref.mode, speculative=ref.speculative, barge_in_ms=ref.barge_in_ms,
                             speculate_after_ms=ref.speculate_after_ms, first_chunk_words=ref.first_chunk_words,
                             tools=tool_cfg)
        names = {"vad": ref.vad, "stt": ref.stt, "llm": ref.llm, "tts": ref.tts, "turn": ref.turn}
        idle = fields.get("webrtc_idle") or "silence"
        if idle not in ("silence", "nothing"):
            fail(f"--webrtc-idle {idle!r}: expected silence or nothing", EXIT_USAGE)
        _serve_reference(host, port, names, cfg, options, ref.llm_hedge, ref.preload, ready_file, log_path, token,
                         idle)
        return
    try:
        cfg = OracleConfig(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as e:
        err = e.errors()[0]
        fail(f"--{str(err['loc'][0]).replace('_', '-')}: {err['msg']}", EXIT_USAGE)

    from harness.agent.server import OracleServer
    _serve_forever(OracleServer(cfg, host, port, log_path), "oracle agent", ready_file, token)


def _serve_reference(host: str, port: int, names: dict, cfg, options: dict, llm_hedge: int, preload: int,
                     ready_file: Path | None, log_path: Path | None, token: str | None = None,
                     webrtc_idle: str = "silence") -> None:
    from harness.agent.providers import ProviderUnavailable
    from harness.agent.reference import ReferenceServer, load_providers
    click.echo(f"loading models: {', '.join(f'{k}={v}' for k, v in names.items())} …", err=True)
    try:
        providers = load_providers(names, options, llm_hedge)
    except (ProviderUnavailable, ValueError) as e:
        fail(str(e), EXIT_USAGE)
    sims = [label["name"] for label in providers.labels.values() if label["simulated"]]
    if sims:
        click.echo(f"note: simulated providers in use: {', '.join(sims)}", err=True)

    srv = ReferenceServer(providers, cfg, host, port, factory=lambda: load_providers(names, options, llm_hedge),
                          event_log=log_path)
    srv.webrtc_idle = webrtc_idle
    for _ in range(preload - 1):
        srv.add_idle(load_providers(names, options, llm_hedge))
    _serve_forever(srv, f"reference agent ({cfg.mode}, turn={names['turn']})", ready_file, token)


def _serve_forever(srv, label: str, ready_file: Path | None = None, token: str | None = None) -> None:
    """Start an agent server, say where it listens, and serve until SIGINT or SIGTERM."""
    srv.token = token or None
    if token is None and srv.host not in ("127.0.0.1", "::1", "localhost"):
        click.echo(f"turnbench: warning: listening on {srv.host} with no --token: anyone who reaches this port can "
                   "call the agent", err=True)

    async def main() -> None:
        from harness.agent import log_limit
        log_limit.install()  # an attack's repeated errors are counted, not written a million times
        try:
            await srv.start()
        except OSError as e:
            fail(f"cannot listen on {srv.host}:{srv.port}: {e.strerror}", EXIT_USAGE)
        from harness.caller.pacing import quiet_gc
        quiet_gc()  # the agent streams in real time, too
        health = srv.health()
        urls = {t: srv.url_for(t) for t in health["transports"]}
        click.echo(f"{label} listening (health: http://{srv.host}:{srv.port}/health):", err=True)
        for t, u in urls.items():
            extra = " (JSON offer; WHIP at /whip)" if t == "webrtc" else ""
            click.echo(f"  --transport {t:7} {u}{extra}", err=True)
        if ready_file is not None:
            tmp = ready_file.with_name(ready_file.name + ".tmp")
            tmp.write_text(json.dumps({"url": srv.url, "urls": urls, "health": health}))
            tmp.replace(ready_file)  # atomic: the waiting side never reads half a file
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await srv.stop()
        click.echo(f"served {srv.calls_served} calls", err=True)

    asyncio.run(main())
