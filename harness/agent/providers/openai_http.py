"""What every OpenAI-compatible HTTP provider shares: the base URL and key, a timeout, and
errors that name the URL and what went wrong (status and the server's own words)."""

from __future__ import annotations

import os
import urllib.error
import urllib.request

import aiohttp

from harness.agent.providers.base import ProviderUnavailable


class OpenAiEndpoint:
    """`base_url` (…/v1), the key (`api_key`, else $OPENAI_API_KEY) and one aiohttp session."""

    def __init__(self, base_url: str, api_key: str | None, timeout_s: float):
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url {base_url!r}: expected http(s)://HOST:PORT/v1")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s {timeout_s!r}: expected seconds > 0")
        self.base_url = base_url.rstrip("/")
        self.key = api_key or os.environ.get("OPENAI_API_KEY")
        self.timeout_s = float(timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def url(self, route: str) -> str:
        return f"{self.base_url}/{route.lstrip('/')}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def fail_unless_ok(self, url: str, resp: aiohttp.ClientResponse) -> None:
        """ProviderUnavailable naming the URL, the status and the start of the body."""
        if resp.status != 200:
            text = (await resp.text(errors="replace"))[:200].strip()
            raise ProviderUnavailable(f"{url}: HTTP {resp.status}: {text}")


def connection_error(url: str, e: BaseException, timeout_s: float) -> ProviderUnavailable:
    """A failed request as one clear sentence: nothing listening, or too slow."""
    if isinstance(e, TimeoutError):
        return ProviderUnavailable(f"{url}: no answer within {timeout_s:g} s (timeout_s)")
    if isinstance(e, aiohttp.ClientConnectorError):
        return ProviderUnavailable(f"{url}: cannot connect ({e.os_error.strerror if e.os_error else e})")
    return ProviderUnavailable(f"{url}: {type(e).__name__}: {e}")


def check_reachable(url: str, key: str | None, timeout_s: float = 5.0, body: bytes | None = None,
                    content_type: str = "application/json") -> bytes:
    """A synchronous request (at warm-up, before serving): GET `url`, or POST `body`. Its bytes;
    ProviderUnavailable naming the URL if nothing answers or the key is refused. A GET that
    finds no such route (404, 405) counts as reachable; a POST must succeed."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if body is not None:
        headers["Content-Type"] = content_type
    req = urllib.request.Request(url, data=body, headers=headers, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return resp.read()
    except urllib.error.HTTPError as e:
        if e.code in (401, 403):
            raise ProviderUnavailable(f"{url}: HTTP {e.code}: the key was refused (set OPENAI_API_KEY or "
                                      "--provider-opt STAGE.api_key=…)") from None
        if body is not None or e.code not in (404, 405):
            detail = e.read()[:200].decode("utf-8", "replace").strip()
            raise ProviderUnavailable(f"{url}: HTTP {e.code}: {detail}") from None
        return b""
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise ProviderUnavailable(f"{url}: cannot connect ({getattr(reason, 'strerror', None) or reason})") from None
