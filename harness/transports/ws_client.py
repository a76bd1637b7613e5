"""A lean WebSocket client (RFC 6455) for the caller's hot path.

The framing is `ws_frames.WsFrames` (parsed and stamped as each read lands, a send is one
`transport.write`); this adds the client's half of the opening handshake: the HTTP/1.1 upgrade
with the accept key checked, masked client frames, and no extensions offered.
"""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
from collections.abc import AsyncIterator

from harness.transports.base import TargetUnreachable
from harness.transports.websocket import check_ws_url
from harness.transports.ws_frames import OP_BINARY, OP_TEXT, Message, WsFrames, accept_key

MAX_HANDSHAKE_BYTES = 64 * 1024


class _Protocol(WsFrames):
    """The upgrade response, then frames."""

    def __init__(self, key: bytes, max_message: int):
        super().__init__(client=True, max_message=max_message, opened=False)
        self.key = key
        self.handshake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.http_status: tuple[int, str] | None = None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.handshake.done():
            self.handshake.set_exception(ConnectionError(
                f"connection closed during the upgrade{f' ({exc})' if exc else ''}"))
        super().connection_lost(exc)

    def open_handshake(self) -> bool:
        if not self._parse_handshake():
            return False
        self.opened = True
        return True

    def _parse_handshake(self) -> bool:
        try:
            raw = self.take_head(MAX_HANDSHAKE_BYTES)
        except ValueError as e:
            self._fail_handshake(f"the upgrade response has {e}")
            return False
        if raw is None:
            return False
        head = raw.decode("latin-1")
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        try:
            status = int(parts[1])
        except (IndexError, ValueError):
            self._fail_handshake(f"not an HTTP response: {lines[0][:80]!r}")
            return False
        self.http_status = (status, parts[2] if len(parts) > 2 else "")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if status != 101:
            self._fail_handshake(f"HTTP {status} {self.http_status[1]}".rstrip()
                                 + ": the server refused the WebSocket upgrade (is this the agent's WebSocket path?)")
            return False
        if headers.get("upgrade", "").lower() != "websocket" or "upgrade" not in headers.get("connection", "").lower():
            self._fail_handshake("HTTP 101 without `Upgrade: websocket` / `Connection: upgrade`")
            return False
        if headers.get("sec-websocket-accept", "").encode() != accept_key(self.key):
            self._fail_handshake("HTTP 101 with a wrong Sec-WebSocket-Accept (not a WebSocket server?)")
            return False
        if headers.get("sec-websocket-extensions"):
            self._fail_handshake(f"the server chose extensions the client did not offer: "
                                 f"{headers['sec-websocket-extensions']!r}")
            return False
        self.handshake.set_result(None)
        return True

    def _fail_handshake(self, why: str) -> None:
        if not self.handshake.done():
            self.handshake.set_exception(TargetUnreachable(why))
        if self.transport is not None:
            self.transport.close()


class WsClient:
    """One client WebSocket: `connect`, `send_binary`/`send_text`, `messages()`, `close`."""

    def __init__(self, url: str, headers: dict | None = None, connect_timeout_s: float = 10.0,
                 max_message: int = 16 * 2**20):
        self.url = check_ws_url(url)
        self.headers = dict(headers or {})
        self.connect_timeout_s, self.max_message = connect_timeout_s, max_message
        self._p: _Protocol | None = None

    @property
    def errors(self) -> list[str]:
        """Protocol faults the server committed (the connection may have gone on)."""
        return self._p.errors if self._p is not None else []

    @property
    def close_code(self) -> int | None:
        return self._p.close_code if self._p is not None else None

    async def connect(self) -> None:
        """Open the TCP (TLS) connection and upgrade it; `TargetUnreachable` names the URL and why."""
        u, url = self.url, str(self.url)
        key = base64.b64encode(os.urandom(16))
        host = u.host
        port = u.port or (443 if u.scheme == "wss" else 80)
        ctx = ssl.create_default_context() if u.scheme == "wss" else None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                _, p = await loop.create_connection(lambda: _Protocol(key, self.max_message), host, port, ssl=ctx)
                host_header = f"[{host}]" if ":" in host else host
                if u.port is not None and not u.is_default_port():
                    host_header += f":{u.port}"
                lines = [f"GET {u.raw_path_qs or '/'} HTTP/1.1", f"Host: {host_header}", "Upgrade: websocket",
                         "Connection: Upgrade", f"Sec-WebSocket-Key: {key.decode()}", "Sec-WebSocket-Version: 13",
                         *(f"{k}: {v}" for k, v in self.headers.items())]
                p.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
                try:
                    await p.handshake
                except BaseException:
                    p.transport.abort()
                    raise
        except TargetUnreachable as e:
            raise TargetUnreachable(f"{url}: {e}") from None
        except TimeoutError:
            raise TargetUnreachable(f"{url}: no WebSocket upgrade within {self.connect_timeout_s:g} s") from None
        except (ConnectionError, OSError) as e:
            raise TargetUnreachable(f"{url}: cannot connect ({getattr(e, 'strerror', None) or e}); "
                                    "is the agent running?") from None
        self._p = p

    def send_binary(self, payload: bytes) -> None:
        """Put one binary message on the socket now (no await: it is one write, never waits for
        the agent to read; `ConnectionError` once the agent has left `MAX_UNSENT_BYTES` unread)."""
        self._p.write(OP_BINARY, payload)

    def send_text(self, text: str) -> None:
        self._p.write(OP_TEXT, text.encode())

    def messages(self) -> AsyncIterator[Message]:
        """Whole messages in arrival order until the connection ends."""
        return self._p.messages()

    async def pump(self, on_message) -> None:
        """Every whole message to `on_message(arrival_ns, opcode, payload)` as it is read, until the
        connection ends (`WsFrames.pump`)."""
        await self._p.pump(on_message)

    async def close(self, code: int = 1000) -> None:
        """The closing handshake (bounded), then the socket; safe to call twice."""
        if self._p is not None:
            await self._p.close(code)
