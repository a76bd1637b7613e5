"""Any OpenAI-compatible streaming chat endpoint (vLLM, Ollama, llama.cpp server, hosted APIs)."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator

import aiohttp

from harness.agent.providers.base import LLM, ProviderUnavailable
from harness.agent.providers.llm_llama import SYSTEM_PROMPT


def check_reachable(url: str, key: str | None, timeout_s: float = 5.0) -> None:
    """GET `url`: ProviderUnavailable naming the URL if nothing answers or the key is refused (a
    server without the route, 404 or 405, is reachable all the same)."""
    import urllib.error
    import urllib.request
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s):
            return
    except urllib.error.HTTPError as e:
        if e.code in (401, 403):
            raise ProviderUnavailable(f"{url}: HTTP {e.code}: the key was refused (set OPENAI_API_KEY or "
                                      "--provider-opt STAGE.api_key=…)") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise ProviderUnavailable(f"{url}: cannot connect ({getattr(reason, 'strerror', None) or reason})") from None


class OpenAiCompatibleLlm(LLM):
    """POST {base_url}/chat/completions with `stream: true`; yields each `delta.content`."""

    name = "openai"
    system_prompt = SYSTEM_PROMPT

    def __init__(self, base_url: str = "http://127.0.0.1:8000/v1", model: str = "default",
                 api_key: str | None = None, max_tokens: int = 48, temperature: float = 0.0,
                 timeout_s: float = 30.0):
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url {base_url!r}: expected http(s)://HOST:PORT/v1")
        self.base_url, self.model = base_url.rstrip("/"), model
        self._key = api_key or os.environ.get("OPENAI_API_KEY")
        self.max_tokens, self.temperature = max_tokens, temperature
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def warm(self) -> None:
        """Check the server answers before serving (GET /models, as every OpenAI-compatible
        server has it): a wrong URL or key fails the agent's start, not its first call."""
        check_reachable(f"{self.base_url}/models", self._key)

    async def stream(self, messages: list[dict]) -> AsyncIterator[str]:
        if not messages or messages[0].get("role") != "system":
            messages = [{"role": "system", "content": SYSTEM_PROMPT}, *messages]
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        url = f"{self.base_url}/chat/completions"
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        body = {"model": self.model, "messages": messages, "stream": True,
                "max_tokens": self.max_tokens, "temperature": self.temperature}
        try:
            async with self._session.post(url, json=body, headers=headers) as resp:
                if resp.status != 200:
                    text = (await resp.text())[:200]
                    raise ProviderUnavailable(f"{url}: HTTP {resp.status}: {text}")
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
        except aiohttp.ClientConnectorError as e:
            raise ProviderUnavailable(f"{url}: cannot connect ({e.os_error.strerror if e.os_error else e})") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
