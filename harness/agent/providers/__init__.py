"""Agent providers (VAD, STT, LLM, TTS) behind one small interface each, registered by name."""

from harness.agent.providers.base import LLM, STT, TTS, VAD, ProviderUnavailable, available, create, model_file

__all__ = ["LLM", "STT", "TTS", "VAD", "ProviderUnavailable", "available", "create", "model_file"]
