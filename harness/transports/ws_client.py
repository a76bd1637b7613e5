"""A lean WebSocket client (RFC 6455) for the caller's hot path.

Every call sends a frame each 20 ms and usually receives one as often, so at hundreds of calls
per core the per-message cost of a general-purpose client is most of the harness's CPU (aiohttp:
a task hop per received message, an awaited writer per sent one). This client is an asyncio
protocol: frames are parsed in `data_received` and stamped there (the time the bytes left the
socket, not when a task got round to them), and a send is one `transport.write`.

It speaks what a voice agent's WebSocket needs: the HTTP/1.1 upgrade (with the accept key
checked), masked client frames, binary and text messages (fragmented ones reassembled),
ping → pong, and the closing handshake. No extensions (permessage-deflate is not offered).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import os
import ssl
import struct
import time
from typing import AsyncIterator

from harness.transports.base import TargetUnreachable
from harness.transports.websocket import check_ws_url

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_HANDSHAKE_BYTES = 64 * 1024
MAX_UNSENT_BYTES = 4 * 2**20
"""Bytes the agent may leave unread before the call is failed (~2 minutes of 16 kHz PCM). A
real-time caller never waits for the socket: one slow agent must not delay other calls' frames."""
CLOSE_WAIT_S = 2.0

Message = tuple[int, int, bytes]
"""(arrival_ns, opcode, payload): a whole text or binary message and when its last byte arrived."""


class WsClosed(ConnectionError):
    """The WebSocket is closed (or closing): nothing more can be sent."""


def accept_key(key: bytes) -> bytes:
    """The `Sec-WebSocket-Accept` value a server must answer `key` with."""
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


class _Masks:
    """Unpredictable 4-byte masking keys (RFC 6455 §5.3), drawn from the OS in bulk."""

    def __init__(self) -> None:
        self._pool, self._at = b"", 0

    def take(self) -> bytes:
        if self._at >= len(self._pool):
            self._pool, self._at = os.urandom(4096), 0
        k = self._pool[self._at:self._at + 4]
        self._at += 4
        return k


def mask(payload: bytes, key: bytes) -> bytes:
    """`payload` XOR the repeated 4-byte `key` (one big-integer XOR, no per-byte Python)."""
    n = len(payload)
    if not n:
        return b""
    reps = key * (n // 4 + 1)
    return (int.from_bytes(payload, "little") ^ int.from_bytes(reps[:n], "little")).to_bytes(n, "little")


def frame_header(opcode: int, length: int, key: bytes) -> bytes:
    """FIN + opcode, the masked length, the masking key."""
    if length < 126:
        return bytes((0x80 | opcode, 0x80 | length)) + key
    if length < 65536:
        return struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length) + key
    return struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length) + key


class _Protocol(asyncio.Protocol):
    """Handshake, then frames: whole messages are queued with the time their last read happened."""

    def __init__(self, key: bytes, max_message: int):
        loop = asyncio.get_running_loop()
        self.key, self.max_message = key, max_message
        self.handshake: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.queue: collections.deque[Message] = collections.deque()
        self.waiter: asyncio.Future | None = None
        self.ended = False
        self.close_sent = False
        self.close_code: int | None = None
        self.errors: list[str] = []
        self._frag_op: int | None = None
        self._frag: list[bytes] = []
        self._masks = _Masks()
        self._paused: asyncio.Future | None = None
        self.http_status: tuple[int, str] | None = None
        self._said_masked = False

    # -- asyncio callbacks ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter_ns()
        self.buf += data
        if not self.handshake.done():
            if not self._parse_handshake():
                return
        self._parse_frames(now)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.handshake.done():
            self.handshake.set_exception(ConnectionError(
                f"connection closed during the upgrade{f' ({exc})' if exc else ''}"))
        self._end()
        if not self.closed.done():
            self.closed.set_result(None)
        if self._paused is not None and not self._paused.done():
            self._paused.set_result(None)

    def pause_writing(self) -> None:
        self._paused = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._paused is not None and not self._paused.done():
            self._paused.set_result(None)
        self._paused = None

    # -- parsing -------------------------------------------------------------------------------

    def _parse_handshake(self) -> bool:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > MAX_HANDSHAKE_BYTES:
                self._fail_handshake("the upgrade response has no end of headers in 64 KiB")
            return False
        head = bytes(self.buf[:end]).decode("latin-1")
        del self.buf[:end + 4]
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

    def _parse_frames(self, now: int) -> None:
        buf = self.buf
        woke = False
        while len(buf) >= 2 and not self.ended:
            b0, b1 = buf[0], buf[1]
            ln, pos = b1 & 0x7F, 2
            if ln == 126:
                if len(buf) < 4:
                    break
                ln, pos = (buf[2] << 8) | buf[3], 4
            elif ln == 127:
                if len(buf) < 10:
                    break
                ln, pos = int.from_bytes(buf[2:10], "big"), 10
            key = None
            if b1 & 0x80:  # servers must not mask; unmask anyway and say so once
                if len(buf) < pos + 4:
                    break
                key, pos = bytes(buf[pos:pos + 4]), pos + 4
            if ln > self.max_message:
                self._protocol_error(1009, f"a {ln}-byte frame exceeds the {self.max_message}-byte limit")
                return
            if len(buf) < pos + ln:
                break
            payload = bytes(buf[pos:pos + ln])
            del buf[:pos + ln]
            if key is not None:
                payload = mask(payload, key)
                if not self._said_masked:
                    self._said_masked = True
                    self.errors.append("the server sent a masked frame (servers must not mask; unmasked anyway)")
            if b0 & 0x70:
                self._protocol_error(1002, "a frame with reserved bits set (no extension was agreed)")
                return
            woke |= self._frame(b0 & 0x80, b0 & 0x0F, payload, now)
        if woke and self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def _frame(self, fin: int, op: int, payload: bytes, now: int) -> bool:
        """Handle one frame; True when a whole message was queued."""
        if op in (OP_TEXT, OP_BINARY):
            if self._frag_op is not None:
                self._protocol_error(1002, "a new message began inside a fragmented one")
                return False
            if fin:
                self.queue.append((now, op, payload))
                return True
            self._frag_op, self._frag = op, [payload]
            return False
        if op == OP_CONT:
            if self._frag_op is None:
                self._protocol_error(1002, "a continuation frame with no message to continue")
                return False
            self._frag.append(payload)
            if sum(map(len, self._frag)) > self.max_message:
                self._protocol_error(1009, f"a fragmented message exceeds the {self.max_message}-byte limit")
                return False
            if fin:
                self.queue.append((now, self._frag_op, b"".join(self._frag)))
                self._frag_op, self._frag = None, []
                return True
            return False
        if op == OP_PING:
            self.write(OP_PONG, payload)
            return False
        if op == OP_PONG:
            return False
        if op == OP_CLOSE:
            self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            self.send_close(1000)
            self._end()
            if self.transport is not None:
                self.transport.close()
            return False
        self._protocol_error(1002, f"unknown opcode 0x{op:x}")
        return False

    def _protocol_error(self, code: int, why: str) -> None:
        self.errors.append(f"websocket protocol error: {why}")
        self.send_close(code)
        self._end()
        if self.transport is not None:
            self.transport.close()

    def _end(self) -> None:
        self.ended = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    # -- writing -------------------------------------------------------------------------------

    def write(self, opcode: int, payload: bytes) -> None:
        t = self.transport
        if t is None or t.is_closing():
            raise WsClosed("the WebSocket is closed")
        key = self._masks.take()
        t.write(frame_header(opcode, len(payload), key) + mask(payload, key))
        if self._paused is not None and t.get_write_buffer_size() > MAX_UNSENT_BYTES:
            raise ConnectionError(f"the agent stopped reading: {t.get_write_buffer_size()} bytes unsent")

    def send_close(self, code: int) -> None:
        if self.close_sent or self.transport is None or self.transport.is_closing():
            return
        self.close_sent = True
        self.write(OP_CLOSE, code.to_bytes(2, "big"))


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

    async def messages(self) -> AsyncIterator[Message]:
        """Whole messages in arrival order until the connection ends."""
        p = self._p
        loop = asyncio.get_running_loop()
        q = p.queue
        while True:
            while q:
                yield q.popleft()
            if p.ended:
                return
            p.waiter = loop.create_future()
            await p.waiter
            p.waiter = None

    async def close(self, code: int = 1000) -> None:
        """The closing handshake (bounded), then the socket; safe to call twice."""
        p = self._p
        if p is None or p.transport is None:
            return
        try:
            p.send_close(code)
            if not p.closed.done():
                await asyncio.wait_for(asyncio.shield(p.closed), CLOSE_WAIT_S)
        except (WsClosed, TimeoutError):
            pass
        finally:
            p._end()
            if not p.closed.done():  # no closing handshake from the server (or we were cancelled)
                p.transport.abort()
