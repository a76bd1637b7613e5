"""`ws-pcm`: WebSocket with binary PCM16LE 16 kHz mono frames and JSON text events."""

from __future__ import annotations

import json
from typing import AsyncIterator

import aiohttp
import numpy as np

from harness.transports import stamping
from harness.transports.base import AudioReceived, EventReceived, Received, Transport
from harness.transports.websocket import check_ws_url, open_websocket

__all__ = ["WsPcmTransport", "check_ws_url", "probe"]


async def probe(url: str, timeout_s: float = 5.0) -> None:
    """Open and close one WebSocket to `url`, raising `TargetUnreachable` if that fails."""
    t = WsPcmTransport(url, connect_timeout_s=timeout_s)
    await t.connect()
    await t.close()


class WsPcmTransport(Transport):
    """Client side of ws-pcm."""

    name = "ws-pcm"

    def __init__(self, url: str, connect_timeout_s: float = 10.0, headers: dict | None = None):
        self.url = str(check_ws_url(url))
        self._timeout = connect_timeout_s
        self._headers = headers or {}
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._protocol_errors: list[str] = []
        self._odd_byte: bytes = b""
        self._stamper: stamping.StampingProtocol | None = None

    async def connect(self) -> None:
        self._session, self._ws, self._stamper = await open_websocket(self.url, self._timeout, self._headers)

    async def send_audio(self, pcm16: bytes) -> None:
        await self._ws.send_bytes(pcm16)

    async def send_event(self, event: dict) -> None:
        await self._ws.send_str(json.dumps(event))

    async def received(self) -> AsyncIterator[Received]:
        ws = self._ws
        async for msg in ws:
            now = stamping.arrival_ns(self._stamper)
            if msg.type == aiohttp.WSMsgType.BINARY:
                data = self._odd_byte + msg.data
                if len(data) % 2:
                    self._odd_byte, data = data[-1:], data[:-1]
                else:
                    self._odd_byte = b""
                if data:
                    yield AudioReceived(now, np.frombuffer(data, dtype="<i2").copy())
            elif msg.type == aiohttp.WSMsgType.TEXT:
                try:
                    event = json.loads(msg.data)
                    if not isinstance(event, dict):
                        raise ValueError("not a JSON object")
                except ValueError as e:
                    self._protocol_errors.append(f"malformed JSON text frame ({e}): {msg.data[:80]!r}")
                    continue
                yield EventReceived(now, event)
            elif msg.type in (aiohttp.WSMsgType.ERROR,):
                self._protocol_errors.append(f"websocket error: {ws.exception()}")
                break

    async def close(self) -> None:
        if self._ws is not None and not self._ws.closed:
            try:
                await self._ws.close()
            except (aiohttp.ClientError, OSError):
                pass
        if self._session is not None:
            await self._session.close()
            self._session = None
