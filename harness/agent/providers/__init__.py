"""Agent providers (VAD, STT, LLM, TTS, turn detector) behind one small interface each,
registered by name through the `turnbench.providers` entry-point group."""

from harness.agent.providers.base import LLM, STT, TTS, VAD, ProviderUnavailable, model_file
from harness.agent.providers.registry import available, create

__all__ = ["LLM", "STT", "TTS", "VAD", "ProviderUnavailable", "available", "create", "model_file"]
