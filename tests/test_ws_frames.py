"""The lean WebSocket framing at the agent's end (server role), driven frame by frame from a
raw socket: fragments, pings, the mask rule, failures and shutdown."""

import asyncio
import logging
import os
import random

from harness.transports.ws_frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    READ_BUFFER,
    WsFrames,
    frame_header,
    mask,
)
from tests.fakes.agents import echo_agent
from tests.test_front_door import upgrade_head


class RawPeer:
    """A client that writes whatever frames a test wants (masked or not)."""

    async def open(self, port: int) -> "RawPeer":
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        self.writer.write(upgrade_head().encode())
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 101")
        return self

    def send(self, op: int, payload: bytes, fin: bool = True, masked: bool = True) -> None:
        key = os.urandom(4) if masked else b""
        first = frame_header(op, len(payload), key)
        first = bytes([first[0] if fin else first[0] & 0x7F]) + first[1:]
        self.writer.write(first + (mask(payload, key) if masked else payload))

    async def frame(self) -> tuple[int, bytes]:
        b0, b1 = await asyncio.wait_for(self.reader.readexactly(2), 5)
        assert not b1 & 0x80, "servers must not mask"
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(await self.reader.readexactly(2), "big")
        elif n == 127:
            n = int.from_bytes(await self.reader.readexactly(8), "big")
        return b0 & 0x0F, await self.reader.readexactly(n)

    async def closed(self) -> bool:
        return await asyncio.wait_for(self.reader.read(), 5) == b""


def test_masking_matches_the_rfc_byte_by_byte_for_silence_speech_and_odd_lengths():
    """RFC 6455 §5.3: octet i XOR key[i mod 4], both ways; the silence shortcuts included."""
    def reference(payload: bytes, key: bytes) -> bytes:
        return bytes(b ^ key[i % 4] for i, b in enumerate(payload))

    for n in (0, 1, 3, 4, 5, 640, 641, 1002, 70_000):
        key = os.urandom(4)
        for payload in (os.urandom(n), bytes(n), (key * n)[:n], bytes(n - 1) + b"\x01" if n else b""):
            masked = mask(payload, key)
            assert masked == reference(payload, key), (n, payload[:8])
            assert mask(masked, key) == payload


async def test_reads_of_any_size_yield_the_same_messages_whatever_the_frame_sizes():
    """The receive buffer: reads split frames anywhere (one byte, a whole burst), frames longer
    than the buffer, fragments; messages come out whole, in order, and the buffer does not grow
    for ordinary traffic."""
    rng = random.Random(5)
    sizes = [0, 1, 5, 125, 126, 640, 65535, 65536, 3 * READ_BUFFER + 7] + [640] * 200
    rng.shuffle(sizes)
    stream, want = bytearray(), []
    for n in sizes:
        payload, key = os.urandom(n), os.urandom(4)
        op = OP_TEXT if n == 5 else OP_BINARY
        if n == 65536:  # sent in two fragments
            half = n // 2
            h1 = frame_header(op, half, key)
            stream += bytes([h1[0] & 0x7F]) + h1[1:] + mask(payload[:half], key)
            stream += frame_header(OP_CONT, n - half, key) + mask(payload[half:], key)
        else:
            stream += frame_header(op, n, key) + mask(payload, key)
        want.append((op, payload))
    for reads in ("bytes", "small", "large"):
        frames = WsFrames(client=False, max_message=2**24)
        got = []
        frames.on_message = lambda t, op, data: got.append((op, data))  # noqa: B023 (this pass's list)
        at = 0
        while at < len(stream):
            room = frames.get_buffer(-1)
            most = {"bytes": 1, "small": rng.randint(1, 700), "large": len(room)}[reads]
            n = min(len(room), most, len(stream) - at)
            room[:n] = stream[at:at + n]
            del room
            frames.buffer_updated(n)
            at += n
        assert got == want, reads
        assert not frames.errors
    long = WsFrames(client=False, max_message=2**24)
    n = 3 * READ_BUFFER + 7
    long.data_received(frame_header(OP_BINARY, n, b"abcd") + mask(bytes(n // 2), b"abcd"))  # half of it
    assert len(long.buf) >= n  # grew for the long frame …
    ordinary = WsFrames(client=False, max_message=2**24)
    for _ in range(500):
        ordinary.data_received(frame_header(OP_BINARY, 640, b"abcd") + mask(bytes(640), b"abcd"))
    assert len(ordinary.buf) == READ_BUFFER  # … and not for ordinary traffic


async def test_fragments_are_reassembled_and_pings_answered():
    async with echo_agent() as agent:
        peer = await RawPeer().open(agent.port)
        parts = [os.urandom(100), os.urandom(300), os.urandom(7)]
        peer.send(OP_BINARY, parts[0], fin=False)
        peer.send(OP_PING, b"are you there")  # control frames may come between fragments
        peer.send(OP_CONT, parts[1], fin=False)
        peer.send(OP_CONT, parts[2])
        assert await peer.frame() == (OP_PONG, b"are you there")
        assert await peer.frame() == (OP_BINARY, b"".join(parts))
        peer.send(OP_CLOSE, (1000).to_bytes(2, "big"))
        assert await peer.frame() == (OP_CLOSE, (1000).to_bytes(2, "big"))
        assert await peer.closed()


async def test_an_unmasked_client_frame_is_a_protocol_error():
    async with echo_agent() as agent:
        peer = await RawPeer().open(agent.port)
        peer.send(OP_BINARY, b"\x00" * 640, masked=False)
        op, payload = await peer.frame()
        assert op == OP_CLOSE and int.from_bytes(payload[:2], "big") == 1002
        assert await peer.closed()


async def test_a_failing_session_closes_with_1011_and_is_logged(caplog):
    caplog.set_level(logging.ERROR, "harness.agent.server")
    async with echo_agent() as agent:
        peer = await RawPeer().open(agent.port)
        peer.send(OP_TEXT, b'{"type": "boom"}')
        peer.send(OP_BINARY, b"\x00" * 640)  # after the failure: not served
        op, payload = await peer.frame()
        assert (op, int.from_bytes(payload[:2], "big")) == (OP_CLOSE, 1011)
        assert await peer.closed()
        for _ in range(100):
            if agent.calls_active == 0 and caplog.records:
                break
            await asyncio.sleep(0.01)
        assert agent.calls_active == 0
    assert any("boom, as asked" in repr(r.exc_info) for r in caplog.records)


async def test_stopping_the_server_ends_calls_in_flight():
    agent = await echo_agent().start()
    try:
        peers = [await RawPeer().open(agent.port) for _ in range(3)]
        for p in peers:
            p.send(OP_BINARY, b"\x01" * 320)
            assert (await p.frame())[0] == OP_BINARY
        assert agent.calls_active == 3
    finally:
        await agent.stop()
    assert agent.calls_active == 0
    for p in peers:
        assert await p.closed()
