"""`ws-pcm`: WebSocket with binary PCM16LE 16 kHz mono frames and JSON text events."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable

import numpy as np

from harness.records.received import AudioReceived, EventReceived, Received
from harness.transports.base import TargetUnreachable, Transport
from harness.transports.websocket import check_ws_url
from harness.transports.ws_client import WsClient
from harness.transports.ws_frames import OP_BINARY

__all__ = ["WsPcmTransport", "check_ws_url", "probe"]


async def probe(url: str, timeout_s: float = 5.0, headers: dict | None = None) -> None:
    """Open and close one WebSocket to `url`, raising `TargetUnreachable` if that fails."""
    t = WsPcmTransport(url, connect_timeout_s=timeout_s, headers=headers)
    await t.connect()
    await t.close()


class WsPcmTransport(Transport):
    """Client side of ws-pcm (on the lean WebSocket client: one write per frame, reads stamped)."""

    name = "ws-pcm"

    def __init__(self, url: str, connect_timeout_s: float = 10.0, headers: dict | None = None):
        self.url = str(check_ws_url(url))
        self._ws = WsClient(self.url, headers, connect_timeout_s)
        self._protocol_errors: list[str] = []
        self._odd_byte: bytes = b""
        self._open = False

    @property
    def protocol_errors(self) -> list[str]:
        return self._ws.errors + self._protocol_errors

    async def connect(self) -> None:
        await self._ws.connect()
        self._open = True

    async def send_audio(self, pcm16: bytes) -> None:
        self._ws.send_binary(pcm16)

    async def send_event(self, event: dict) -> None:
        self._ws.send_text(json.dumps(event))

    def _item(self, now: int, op: int, data: bytes) -> Received | None:
        if op == OP_BINARY:
            if self._odd_byte or len(data) % 2:
                data = self._odd_byte + data
                self._odd_byte, data = (data[-1:], data[:-1]) if len(data) % 2 else (b"", data)
            return AudioReceived(now, np.frombuffer(data, dtype="<i2")) if data else None
        text = data.decode("utf-8", "replace")
        try:
            event = json.loads(text)
            if not isinstance(event, dict):
                raise ValueError("not a JSON object")
        except ValueError as e:
            self._protocol_errors.append(f"malformed JSON text frame ({e}): {text[:80]!r}")
            return None
        return EventReceived(now, event)

    async def received(self) -> AsyncIterator[Received]:
        async for msg in self._ws.messages():
            item = self._item(*msg)
            if item is not None:
                yield item

    async def pump(self, on_item: Callable[[Received], None]) -> None:
        """Each message goes to `on_item` from the socket's read callback (no task hop)."""
        def deliver(now: int, op: int, data: bytes) -> None:
            item = self._item(now, op, data)
            if item is not None:
                on_item(item)

        await self._ws.pump(deliver)

    async def close(self) -> None:
        if self._open:
            self._open = False
            await self._ws.close()


class AiohttpWsPcmTransport(WsPcmTransport):
    """ws-pcm on aiohttp's client: the straightforward stack, kept as the baseline
    `turnbench bench capacity` measures the lean client against (`client="aiohttp"`)."""

    pump = Transport.pump

    def __init__(self, url: str, connect_timeout_s: float = 10.0, headers: dict | None = None):
        super().__init__(url, connect_timeout_s, headers)
        self._timeout, self._headers = connect_timeout_s, headers or {}
        self._session = self._aws = None

    @property
    def protocol_errors(self) -> list[str]:
        return self._protocol_errors

    async def connect(self) -> None:
        import aiohttp
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._timeout))
        try:
            self._aws = await self._session.ws_connect(self.url, headers=self._headers, heartbeat=None,
                                                       max_msg_size=0, compress=0)
        except (aiohttp.ClientError, OSError) as e:
            await self._session.close()
            raise TargetUnreachable(f"{self.url}: {type(e).__name__}: {e}") from None
        self._open = True

    async def send_audio(self, pcm16: bytes) -> None:
        await self._aws.send_bytes(pcm16)

    async def send_event(self, event: dict) -> None:
        await self._aws.send_str(json.dumps(event))

    async def received(self) -> AsyncIterator[Received]:
        import aiohttp
        async for msg in self._aws:
            now = time.perf_counter_ns()
            if msg.type == aiohttp.WSMsgType.BINARY:
                yield AudioReceived(now, np.frombuffer(msg.data[: len(msg.data) // 2 * 2], dtype="<i2"))
            elif msg.type == aiohttp.WSMsgType.TEXT:
                with contextlib.suppress(ValueError):
                    yield EventReceived(now, json.loads(msg.data))
            else:
                break

    async def close(self) -> None:
        if self._open:
            self._open = False
            with contextlib.suppress(Exception):
                await self._aws.close()
            await self._session.close()
