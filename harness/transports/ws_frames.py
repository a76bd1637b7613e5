"""RFC 6455 framing for either end of a WebSocket, as an asyncio protocol.

Every call sends a frame each 20 ms and usually receives one as often, so at hundreds of calls
per core the per-message cost of a general-purpose WebSocket library is most of the CPU (aiohttp:
a task hop per received message, an awaited writer per sent one). Here the socket is read into
one buffer per connection (asyncio's `BufferedProtocol`: a plain protocol gets a new 256 KiB bytes
object per read, which malloc carves and gives back each time), frames are parsed there as they
are read and stamped then (the time the bytes left the socket, not when a task got round to
them), and a send is one `transport.write`. Whole messages are either queued (for an async
iterator) or handed to `on_message` right away (no task hop at all).

It speaks what a voice agent's WebSocket needs: binary and text messages (fragmented ones
reassembled), ping → pong, and the closing handshake. No extensions (permessage-deflate is never
agreed). A client masks what it sends; a server requires masked frames (RFC 6455 §5.1).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import functools
import hashlib
import os
import struct
import time
from collections.abc import Callable

import numpy as np

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_UNSENT_BYTES = 4 * 2**20
"""Bytes the peer may leave unread before the connection is failed (~2 minutes of 16 kHz PCM). A
real-time end never waits for the socket: one slow peer must not delay other calls' frames."""
CLOSE_WAIT_S = 2.0
READ_BUFFER = 64 * 1024
"""Receive buffer per connection (grown for a longer frame); each read has at least MIN_READ free."""
MIN_READ = 16 * 1024

Message = tuple[int, int, bytes]
"""(arrival_ns, opcode, payload): a whole text or binary message and when its last byte arrived."""


class WsClosed(ConnectionResetError):
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


@functools.lru_cache(maxsize=8)
def _zeros(n: int) -> bytes:
    return bytes(n)


def mask(payload: bytes, key: bytes) -> bytes:
    """`payload` XOR the repeated 4-byte `key` (masking and unmasking are the same).

    Silence is most of a call's audio each way, and its frames need no XOR: masked, an all-zero
    payload is the key repeated, and a payload equal to the key repeated unmasks to zeros (two
    comparisons at memory speed). Other payloads: one numpy XOR over 32-bit words (one big-integer
    XOR when the length is not a multiple of 4); no per-byte Python either way."""
    n = len(payload)
    if not n:
        return b""
    stream = (key * (n // 4 + 1))[:n]
    zeros = _zeros(n) if n <= 65536 else bytes(n)
    if payload == stream:
        return zeros
    if payload == zeros:
        return stream
    if not n % 4:
        return (np.frombuffer(payload, np.uint32) ^ np.uint32(int.from_bytes(key, "little"))).tobytes()
    return (int.from_bytes(payload, "little") ^ int.from_bytes(stream, "little")).to_bytes(n, "little")


def frame_header(opcode: int, length: int, key: bytes = b"") -> bytes:
    """FIN + opcode, the length (with the mask bit when `key` is given), the masking key."""
    m = 0x80 if key else 0
    if length < 126:
        return bytes((0x80 | opcode, m | length)) + key
    if length < 65536:
        return struct.pack("!BBH", 0x80 | opcode, m | 126, length) + key
    return struct.pack("!BBQ", 0x80 | opcode, m | 127, length) + key


class WsFrames(asyncio.BufferedProtocol):
    """One end's frames: whole messages are queued (or passed to `on_message`) with the time their
    last read happened. `client`: mask what is sent, expect unmasked frames; else the reverse."""

    def __init__(self, client: bool, max_message: int, opened: bool = True):
        loop = asyncio.get_running_loop()
        self.client, self.max_message = client, max_message
        self.opened = opened
        """False until the opening handshake is done (a client's upgrade response)."""
        self.closed: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray(READ_BUFFER)
        """Bytes read, unparsed ones at [start, end)."""
        self._view = memoryview(self.buf)
        self.start = self.end = 0
        self._want = 0  # bytes from `start` the frame being read needs
        self.queue: collections.deque[Message] = collections.deque()
        self.waiter: asyncio.Future | None = None
        self.on_message: Callable[[int, int, bytes], None] | None = None
        """Called with (arrival_ns, opcode, payload) for each whole message instead of queueing it."""
        self.ended = False
        self.close_sent = False
        self.close_code: int | None = None
        self.errors: list[str] = []
        self._frag_op: int | None = None
        self._frag: list[bytes] = []
        self._masks = _Masks() if client else None
        self._paused: asyncio.Future | None = None
        self._said_masked = False

    # -- asyncio callbacks ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def get_buffer(self, sizehint: int) -> memoryview:
        if self.start == self.end:
            self.start = self.end = 0
        need = max(self.end - self.start + MIN_READ, self._want)
        if len(self.buf) - self.end < MIN_READ or need > len(self.buf) - self.start:
            self._compact(need)
        return self._view[self.end:]

    def _compact(self, need: int) -> None:
        """Move the unparsed bytes to the front, into a larger buffer if `need` bytes do not fit."""
        pending = self.buf[self.start:self.end]
        if need > len(self.buf):
            self.buf = bytearray(max(need, 2 * len(self.buf)))
            self._view = memoryview(self.buf)
        self._view[:len(pending)] = pending  # no resize: asyncio may still hold a view of the buffer
        self.start, self.end = 0, len(pending)

    def buffer_updated(self, nbytes: int) -> None:
        now = time.perf_counter_ns()
        self.end += nbytes
        if not self.opened and not self.open_handshake():
            return
        self._parse_frames(now)

    def data_received(self, data: bytes) -> None:
        """Bytes someone else read (the request head's reader handing a connection over, a test)."""
        data = memoryview(data)
        while len(data):
            room = self.get_buffer(len(data))
            n = min(len(room), len(data))
            room[:n] = data[:n]
            del room
            self.buffer_updated(n)
            data = data[n:]

    def take_head(self, limit: int) -> bytes | None:
        """The unparsed bytes up to a blank line (an HTTP head, without it), consumed; None while
        it is incomplete; `ValueError` once `limit` bytes hold no blank line."""
        at = self.buf.find(b"\r\n\r\n", self.start, self.end)
        if at < 0:
            if self.end - self.start > limit:
                raise ValueError(f"no end of headers in {limit // 1024} KiB")
            return None
        head = bytes(self.buf[self.start:at])
        self.start = at + 4
        return head

    def open_handshake(self) -> bool:
        """Consume the opening handshake from `buf`; True once it is complete (subclasses)."""
        return True

    def connection_lost(self, exc: Exception | None) -> None:
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

    def _parse_frames(self, now: int) -> None:
        buf, view, i, end = self.buf, self._view, self.start, self.end
        woke = False
        self._want = 0
        while end - i >= 2 and not self.ended:
            b0, b1 = buf[i], buf[i + 1]
            ln, pos = b1 & 0x7F, i + 2
            if ln == 126:
                if end - i < 4:
                    break
                ln, pos = (buf[i + 2] << 8) | buf[i + 3], i + 4
            elif ln == 127:
                if end - i < 10:
                    break
                ln, pos = int.from_bytes(buf[i + 2:i + 10], "big"), i + 10
            key = None
            if b1 & 0x80:
                if end < pos + 4:
                    break
                key, pos = bytes(buf[pos:pos + 4]), pos + 4
            elif not self.client:
                self._protocol_error(1002, "the client sent an unmasked frame (clients must mask)")
                return
            if ln > self.max_message:
                self._protocol_error(1009, f"a {ln}-byte frame exceeds the {self.max_message}-byte limit")
                return
            if end < pos + ln:
                self._want = pos + ln - i
                break
            payload = view[pos:pos + ln].tobytes()
            i = self.start = pos + ln
            if key is not None:
                payload = mask(payload, key)
                if self.client and not self._said_masked:  # servers must not mask; unmasked anyway, said once
                    self._said_masked = True
                    self.errors.append("the server sent a masked frame (servers must not mask; unmasked anyway)")
            if b0 & 0x70:
                self._protocol_error(1002, "a frame with reserved bits set (no extension was agreed)")
                return
            woke |= self._frame(b0 & 0x80, b0 & 0x0F, payload, now)
        if woke and self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def _deliver(self, msg: Message) -> bool:
        if self.on_message is not None:
            self.on_message(*msg)
            return False
        self.queue.append(msg)
        return True

    def _frame(self, fin: int, op: int, payload: bytes, now: int) -> bool:
        """Handle one frame; True when a whole message was queued."""
        if op in (OP_TEXT, OP_BINARY):
            if self._frag_op is not None:
                self._protocol_error(1002, "a new message began inside a fragmented one")
                return False
            if fin:
                return self._deliver((now, op, payload))
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
                op, self._frag_op = self._frag_op, None
                payload, self._frag = b"".join(self._frag), []
                return self._deliver((now, op, payload))
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
        """One whole message, now (`WsClosed` once closed; `ConnectionError` once the peer has left
        `MAX_UNSENT_BYTES` unread)."""
        t = self.transport
        if t is None or t.is_closing():
            raise WsClosed("the WebSocket is closed")
        if self._masks is not None:
            key = self._masks.take()
            t.write(frame_header(opcode, len(payload), key) + mask(payload, key))
        else:
            t.write(frame_header(opcode, len(payload)) + payload)
        if self._paused is not None and t.get_write_buffer_size() > MAX_UNSENT_BYTES:
            raise ConnectionError(f"the peer stopped reading: {t.get_write_buffer_size()} bytes unsent")

    def send_close(self, code: int, reason: bytes = b"") -> None:
        if self.close_sent or self.transport is None or self.transport.is_closing():
            return
        self.close_sent = True
        self.write(OP_CLOSE, code.to_bytes(2, "big") + reason[:123])

    # -- the application's side ----------------------------------------------------------------

    async def messages(self):
        """Whole messages in arrival order until the connection ends."""
        loop = asyncio.get_running_loop()
        q = self.queue
        while True:
            while q:
                yield q.popleft()
            if self.ended:
                return
            self.waiter = loop.create_future()
            await self.waiter
            self.waiter = None

    async def pump(self, on_message: Callable[[int, int, bytes], None]) -> None:
        """Hand every whole message to `on_message` as its last byte is read (no task hop per
        message), until the connection ends. An exception `on_message` raises closes the
        connection (1011) and is raised here."""
        failed: list[Exception] = []

        def deliver(arrival_ns: int, op: int, payload: bytes) -> None:
            if failed:
                return
            try:
                on_message(arrival_ns, op, payload)
            except Exception as e:  # noqa: BLE001 - re-raised below, where the consumer awaits
                failed.append(e)
                self.send_close(1011)
                if self.transport is not None:
                    self.transport.close()

        while self.queue:
            deliver(*self.queue.popleft())
        self.on_message = deliver
        loop = asyncio.get_running_loop()
        try:
            while not self.ended:
                self.waiter = loop.create_future()
                await self.waiter
        finally:
            self.on_message, self.waiter = None, None
        if failed:
            raise failed[0]

    async def close(self, code: int = 1000, reason: bytes = b"") -> None:
        """The closing handshake (bounded), then the socket; safe to call twice."""
        if self.transport is None:
            return
        try:
            self.send_close(code, reason)
            if not self.closed.done():
                await asyncio.wait_for(asyncio.shield(self.closed), CLOSE_WAIT_S)
        except (WsClosed, TimeoutError):
            pass
        finally:
            self._end()
            if not self.closed.done():  # no closing handshake from the peer (or we were cancelled)
                self.transport.abort()
