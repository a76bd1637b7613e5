"""The lean WebSocket client against a real aiohttp server and against raw sockets that misbehave."""

import asyncio
import contextlib
import os
import time

import pytest
from aiohttp import WSMsgType, web

from harness.transports import TargetUnreachable
from harness.transports.ws_client import WsClient
from harness.transports.ws_frames import OP_BINARY, OP_TEXT, accept_key, frame_header, mask
from tests.fakes.agents import ws_handler_server


@contextlib.asynccontextmanager
async def raw_server(script):
    """A TCP server whose connection handler is `script(reader, writer, request_headers)`."""
    async def on_conn(reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        headers = {}
        for line in head.decode().split("\r\n")[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        try:
            await script(reader, writer, headers)
        finally:
            writer.close()

    srv = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    try:
        yield srv.sockets[0].getsockname()[1]
    finally:
        srv.close()


def upgrade(headers: dict) -> bytes:
    return (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept_key(headers["sec-websocket-key"].encode()) + b"\r\n\r\n")


def server_frame(op: int, payload: bytes, fin: bool = True, masked: bool = False) -> bytes:
    """An unmasked (server) frame, or a masked one to test the client's tolerance."""
    key = os.urandom(4) if masked else b""
    hdr = bytearray(frame_header(op, len(payload), key or b"\0\0\0\0"))
    if not fin:
        hdr[0] &= 0x7F
    if not masked:
        hdr[1] &= 0x7F
        del hdr[-4:]
    return bytes(hdr) + (mask(payload, key) if masked else payload)


def test_accept_key_matches_the_rfc_example():
    assert accept_key(b"dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 §1.3


def test_mask_is_its_own_inverse_and_matches_the_rfc_example():
    # RFC 6455 §5.7: "Hello" masked with 37 fa 21 3d
    key = bytes.fromhex("37fa213d")
    assert mask(b"Hello", key) == bytes.fromhex("7f9f4d5158")
    data = os.urandom(1001)
    assert mask(mask(data, key), key) == data and mask(b"", key) == b""


async def test_round_trip_with_aiohttp_binary_text_and_big_messages():
    got = []

    async def handler(request):
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        async for msg in ws:
            got.append((msg.type, msg.data))
            if msg.type == WSMsgType.BINARY:
                await ws.send_bytes(msg.data[::-1])
            else:
                await ws.send_str(msg.data.upper())
        return ws

    async with ws_handler_server(handler) as srv:
        c = WsClient(f"ws://127.0.0.1:{srv.port}/ws")
        await c.connect()
        big = os.urandom(70_000)  # 64-bit length form
        for payload in (b"\x01\x02" * 320, big, b"x" * 200):
            c.send_binary(payload)
        c.send_text("hello")
        out = []
        async for arrival, op, data in c.messages():
            out.append((op, data))
            assert arrival > 0
            if len(out) == 4:
                break
        await c.close()
    assert [t for t, _ in got] == [WSMsgType.BINARY] * 3 + [WSMsgType.TEXT]
    assert got[1][1] == big
    assert out == [(OP_BINARY, (b"\x01\x02" * 320)[::-1]), (OP_BINARY, big[::-1]), (OP_BINARY, b"x" * 200),
                   (OP_TEXT, b"HELLO")]
    assert c.close_code == 1000


async def test_fragments_pings_and_masked_server_frames():
    pongs = []

    async def script(reader, writer, headers):
        writer.write(upgrade(headers))
        writer.write(server_frame(0x9, b"are you there"))
        writer.write(server_frame(OP_TEXT, b'{"a"', fin=False) + server_frame(0x0, b": 1}"))
        writer.write(server_frame(OP_BINARY, b"\x05\x06", masked=True))
        writer.write(server_frame(0x8, (1000).to_bytes(2, "big")))
        await writer.drain()
        pongs.append(await reader.readexactly(2 + 4 + 13))
        await asyncio.sleep(0.1)

    async with raw_server(script) as port:
        c = WsClient(f"ws://127.0.0.1:{port}/ws")
        await c.connect()
        msgs = [(op, data) async for _, op, data in c.messages()]
        await c.close()
    assert msgs == [(OP_TEXT, b'{"a": 1}'), (OP_BINARY, b"\x05\x06")]
    assert any("masked" in e for e in c.errors)
    pong = pongs[0]  # the ping answered, masked, with its payload
    assert pong[0] == 0x8A and pong[1] == 0x80 | 13 and mask(pong[6:], pong[2:6]) == b"are you there"


async def test_bad_upgrades_say_what_was_wrong():
    async def not_found(reader, writer, headers):
        writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    async def wrong_accept(reader, writer, headers):
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: bm9wZQ==\r\n\r\n")
        await writer.drain()

    async def silent(reader, writer, headers):
        await asyncio.sleep(2)

    for script, expect in ((not_found, "HTTP 404 Not Found: the server refused the WebSocket upgrade"),
                           (wrong_accept, "wrong Sec-WebSocket-Accept"),
                           (silent, "no WebSocket upgrade within 0.3 s")):
        async with raw_server(script) as port:
            url = f"ws://127.0.0.1:{port}/ws"
            with pytest.raises(TargetUnreachable) as e:
                await WsClient(url, connect_timeout_s=0.3).connect()
        assert str(e.value).startswith(url) and expect in str(e.value), str(e.value)


async def test_reserved_bits_and_stray_continuations_are_protocol_errors():
    closes = []

    async def script(reader, writer, headers):
        writer.write(upgrade(headers))
        writer.write(server_frame(0x0, b"orphan"))
        await writer.drain()
        closes.append(await reader.readexactly(2 + 4 + 2))

    async with raw_server(script) as port:
        c = WsClient(f"ws://127.0.0.1:{port}/ws")
        await c.connect()
        msgs = [m async for m in c.messages()]
        await c.close()
    assert msgs == [] and any("continuation" in e for e in c.errors)
    close = closes[0]  # the client closed with 1002 (protocol error)
    assert close[0] == 0x88 and mask(close[6:], close[2:6]) == (1002).to_bytes(2, "big")


async def test_arrival_is_stamped_at_the_read_not_when_the_consumer_looks():
    async def script(reader, writer, headers):
        writer.write(upgrade(headers) + server_frame(OP_BINARY, b"\0\0" * 320))
        await writer.drain()
        await asyncio.sleep(0.5)

    async with raw_server(script) as port:
        c = WsClient(f"ws://127.0.0.1:{port}/ws")
        await c.connect()
        await asyncio.sleep(0.2)  # the consumer is busy; the message waits in the queue
        it = c.messages()
        arrival, op, data = await it.__anext__()
        assert (time.perf_counter_ns() - arrival) / 1e6 >= 150  # stamped ≥ 0.2 s before we looked
        await it.aclose()
        await c.close()
    assert op == OP_BINARY and len(data) == 640
