"""`turnbench agent serve`: run a built-in agent as a server."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import click
from pydantic import ValidationError

from harness.agent.oracle_config import OracleConfig
from harness.cli.common import EXIT_USAGE, fail


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


@click.group()
def agent() -> None:
    """Built-in agents: the oracle (programmed behaviour, for calibration and tests)."""


@agent.command()
@click.option("--oracle", is_flag=True, help="Serve the oracle agent (answers with exactly programmed behaviour).")
@click.option("--reference", is_flag=True,
              help="Serve the reference streaming agent (Silero VAD → pocketsphinx → SmolLM2 → Piper, offline).")
@click.option("--vad", default="silero", show_default=True, help="Reference agent: VAD provider.")
@click.option("--stt", default="pocketsphinx", show_default=True, help="Reference agent: STT provider (or sim).")
@click.option("--llm", default="llama", show_default=True, help="Reference agent: LLM provider (or sim).")
@click.option("--tts", default="piper", show_default=True, help="Reference agent: TTS provider (or sim).")
@click.option("--llm-url", default=None, metavar="URL",
              help="Reference agent with --llm openai: base URL of an OpenAI-compatible server, e.g. "
                   "http://127.0.0.1:8000/v1 (vLLM, Ollama, llama.cpp server); key from OPENAI_API_KEY.")
@click.option("--eot-silence-ms", type=click.FloatRange(min=50), default=600.0, show_default=True,
              help="Reference agent: silence that ends the caller's turn.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0 = any free port).")
@click.option("--log", "log_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Append the oracle's ground truth (one JSON line per caller turn) to this file.")
@_oracle_options
def serve(oracle: bool, reference: bool, vad: str, stt: str, llm: str, tts: str, llm_url: str | None,
          eot_silence_ms: float,
          host: str, port: int, log_path: Path | None, **fields) -> None:
    """Serve an agent over ws-pcm at ws://HOST:PORT/ws until Ctrl-C.

    --oracle is driven by turnbench's `turnbench.hint` events (which stream samples are
    speech): call it with `turnbench run SCENARIO --target ws://HOST:PORT/ws --hints`.
    --reference is a real agent: `turnbench run SCENARIO --target ws://HOST:PORT/ws`.
    """
    if oracle == reference:
        fail("choose one of --oracle or --reference", EXIT_USAGE)
    if reference:
        options = {"llm": {"base_url": llm_url}} if llm_url and llm == "openai" else {}
        _serve_reference(host, port, {"vad": vad, "stt": stt, "llm": llm, "tts": tts}, eot_silence_ms, options)
        return
    try:
        cfg = OracleConfig(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as e:
        err = e.errors()[0]
        fail(f"--{str(err['loc'][0]).replace('_', '-')}: {err['msg']}", EXIT_USAGE)

    from harness.agent.server import OracleServer
    _serve_forever(OracleServer(cfg, host, port, log_path), "oracle agent")


def _serve_reference(host: str, port: int, names: dict, eot_silence_ms: float, options: dict) -> None:
    from harness.agent.pipeline import PipelineConfig
    from harness.agent.providers import ProviderUnavailable
    from harness.agent.reference import ReferenceServer, load_providers
    try:
        providers = load_providers(names, options)
    except (ProviderUnavailable, ValueError) as e:
        fail(str(e), EXIT_USAGE)
    sims = [p.name for p in providers.__dict__.values() if p.simulated]
    if sims:
        click.echo(f"note: simulated providers in use: {', '.join(sims)}", err=True)

    srv = ReferenceServer(providers, PipelineConfig(eot_silence_ms=eot_silence_ms), host, port,
                          factory=lambda: load_providers(names, options))
    _serve_forever(srv, "reference agent")


def _serve_forever(srv, label: str) -> None:
    """Start an agent server, say where it listens, and serve until SIGINT or SIGTERM."""

    async def main() -> None:
        try:
            await srv.start()
        except OSError as e:
            fail(f"cannot listen on {srv.host}:{srv.port}: {e.strerror}", EXIT_USAGE)
        click.echo(f"{label} listening on {srv.url} (health: http://{srv.host}:{srv.port}/health)", err=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await srv.stop()
        click.echo(f"served {srv.calls_served} calls", err=True)

    asyncio.run(main())
