"""Any OpenAI-compatible streaming chat endpoint (vLLM, Ollama, llama.cpp server, hosted APIs)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp

from harness.agent.providers.base import LLM, ProviderUnavailable
from harness.agent.providers.llm_llama import SYSTEM_PROMPT
from harness.agent.providers.openai_http import OpenAiEndpoint, check_reachable, connection_error


class OpenAiCompatibleLlm(LLM):
    """POST {base_url}/chat/completions with `stream: true`; yields each `delta.content`."""

    name = "openai"
    system_prompt = SYSTEM_PROMPT

    def __init__(self, base_url: str = "http://127.0.0.1:8000/v1", model: str = "default",
                 api_key: str | None = None, max_tokens: int = 48, temperature: float = 0.0,
                 timeout_s: float = 30.0):
        self.api = OpenAiEndpoint(base_url, api_key, timeout_s)
        self.base_url, self.model = self.api.base_url, model
        self.max_tokens, self.temperature = max_tokens, temperature

    def warm(self) -> None:
        """Check the server answers before serving (GET /models, as every OpenAI-compatible
        server has it): a wrong URL or key fails the agent's start, not its first call."""
        check_reachable(self.api.url("models"), self.api.key)

    async def stream(self, messages: list[dict]) -> AsyncIterator[str]:
        if not messages or messages[0].get("role") != "system":
            messages = [{"role": "system", "content": SYSTEM_PROMPT}, *messages]
        url = self.api.url("chat/completions")
        body = {"model": self.model, "messages": messages, "stream": True,
                "max_tokens": self.max_tokens, "temperature": self.temperature}
        try:
            async with self.api.session().post(url, json=body, headers=self.api.headers) as resp:
                await self.api.fail_unless_ok(url, resp)
                async for raw in resp.content:
                    line = raw.decode("utf-8", "replace").strip()
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    try:
                        delta = json.loads(data)["choices"][0].get("delta", {}).get("content")
                    except (ValueError, KeyError, IndexError) as e:
                        raise ProviderUnavailable(f"{url}: malformed stream chunk {data[:80]!r} ({e})") from None
                    if delta:
                        yield delta
        except (aiohttp.ClientError, TimeoutError) as e:
            raise connection_error(url, e, self.api.timeout_s) from None

    async def close(self) -> None:
        await self.api.close()
