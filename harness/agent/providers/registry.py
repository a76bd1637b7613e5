"""Providers by stage and name, from the `turnbench.providers` entry-point group.

turnbench's own providers are registered in its pyproject.toml exactly as a third-party package
registers its own: an entry point named `STAGE.NAME` (stage: vad, stt, llm, tts, turn) whose
value is `module:Class`. Nothing is imported until a provider is created, so a missing optional
dependency costs nothing until that provider is chosen, and then says what installs it.
"""

from __future__ import annotations

import functools
import importlib
from importlib.metadata import entry_points

from harness.agent.providers.base import EXTRA_HINT, ProviderUnavailable
from harness.errors import InputError

GROUP = "turnbench.providers"
STAGES = ("vad", "stt", "llm", "tts", "turn")
DEFAULTS = {"vad": "silero", "stt": "pocketsphinx", "llm": "llama", "tts": "piper", "turn": "vad"}
"""The reference agent's provider for each stage when none is chosen."""

BUILTIN: dict[str, str] = {
    "turn.vad": "harness.agent.providers.turn_vad:SilenceTurn",
    "turn.semantic": "harness.agent.providers.turn_semantic:SemanticTurn",
    "turn.smart": "harness.agent.providers.turn_smart:SmartTurn",
    "vad.silero": "harness.agent.providers.vad_silero:SileroVad",
    "vad.webrtc": "harness.agent.providers.vad_webrtc:WebRtcVad",
    "stt.pocketsphinx": "harness.agent.providers.stt_pocketsphinx:PocketsphinxStt",
    "stt.whisper": "harness.agent.providers.stt_whisper:WhisperStt",
    "stt.openai": "harness.agent.providers.stt_openai:OpenAiTranscriptionStt",
    "stt.sim": "harness.agent.providers.sim:SimStt",
    "stt.sim-stt": "harness.agent.providers.sim:SimStt",
    "tts.piper": "harness.agent.providers.tts_piper:PiperTts",
    "tts.espeak": "harness.agent.providers.tts_espeak:EspeakTts",
    "tts.openai": "harness.agent.providers.tts_openai:OpenAiSpeechTts",
    "tts.sim": "harness.agent.providers.sim:SimTts",
    "tts.sim-tts": "harness.agent.providers.sim:SimTts",
    "llm.llama": "harness.agent.providers.llm_llama:LlamaLlm",
    "llm.openai": "harness.agent.providers.llm_openai:OpenAiCompatibleLlm",
    "llm.sim": "harness.agent.providers.sim:SimLlm",
    "llm.sim-llm": "harness.agent.providers.sim:SimLlm",
}
"""turnbench's own entries, as pyproject.toml declares them (tests/test_providers.py keeps the
two equal); used as they are when turnbench runs from a tree that was never installed."""


@functools.cache
def registered() -> dict[str, dict[str, str]]:
    """stage → {name: "module:Class"}: the entry points of every installed package."""
    found = {ep.name: ep.value for ep in entry_points(group=GROUP)}
    out: dict[str, dict[str, str]] = {s: {} for s in STAGES}
    for key, target in {**BUILTIN, **found}.items():
        stage, _, name = key.partition(".")
        if stage in out and name:
            out[stage][name] = target
    return out


def available(stage: str) -> list[str]:
    """Registered provider names of a stage."""
    return sorted(registered().get(stage, {}))


def create(stage: str, name: str, **options):
    """Instantiate a provider by stage and name, importing its module only now."""
    try:
        target = registered()[stage][name]
    except KeyError:
        known = ", ".join(available(stage)) or "none"
        raise InputError(f"unknown {stage} provider {name!r} (known: {known})") from None
    module_name, _, cls_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ProviderUnavailable(f"{stage} provider {name!r} needs {e.name or 'a missing package'}: "
                                  f"{EXTRA_HINT}") from e
    try:
        return getattr(module, cls_name)(**options)
    except TypeError as e:
        raise InputError(f"{stage} provider {name!r}: {e} (options given: {sorted(options) or 'none'})") from None


def parse_provider_opts(pairs: tuple[str, ...] | list[str], groups: tuple[str, ...] = STAGES,
                        what: str = "STAGE") -> dict[str, dict]:
    """`--provider-opt STAGE.KEY=VALUE` → {stage: {key: value}}; a value that reads as JSON
    (a number, true/false, a list) is taken as such, anything else as text. `groups` are the
    names allowed before the dot (the stages; `bench` passes the providers it compares)."""
    import json
    out: dict[str, dict] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        stage, dot, field = key.partition(".")
        if not sep or not dot or not field or stage not in groups:
            raise InputError(f"--provider-opt {pair!r}: expected {what}.KEY=VALUE with {what} one of {', '.join(groups)}")
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = value
        out.setdefault(stage, {})[field] = parsed
    return out
