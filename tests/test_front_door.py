"""The agent server's front door: ws-pcm upgrades answered on the socket, the rest to aiohttp."""

import asyncio
import base64
import json
import os

import aiohttp

from tests.fakes.agents import echo_agent


async def raw_request(port: int, head: str) -> bytes:
    """Send a request head on a plain socket; everything the server says until it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head.encode())
    try:
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


def upgrade_head(path="/ws", version="13", key=None, connection="Upgrade") -> str:
    key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
    return (f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: {connection}\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: {version}\r\n\r\n")


async def test_an_independent_client_talks_to_the_lean_endpoint():
    # aiohttp's client, not turnbench's: the server side must speak the RFC, not just our dialect
    async with echo_agent() as agent, aiohttp.ClientSession() as http:
        async with http.ws_connect(f"ws://127.0.0.1:{agent.port}/ws?call_id=abc") as ws:
            pcm = os.urandom(640)
            await ws.send_bytes(pcm)
            assert (await ws.receive(timeout=5)).data == pcm
            big = os.urandom(200_000)  # a 64-bit length on the wire
            await ws.send_bytes(big)
            assert (await ws.receive(timeout=5)).data == big
            await ws.send_str(json.dumps({"type": "hello", "n": 1}))
            msg = await ws.receive(timeout=5)
            assert json.loads(msg.data) == {"type": "echo", "of": {"type": "hello", "n": 1}}
            await ws.send_str("not json")  # ignored, the call goes on
            await ws.send_bytes(b"\x01\x02")
            assert (await ws.receive(timeout=5)).data == b"\x01\x02"
        for _ in range(100):
            if agent.calls_active == 0:
                break
            await asyncio.sleep(0.01)
        assert agent.call_ids == ["abc"] and agent.events == [{"type": "hello", "n": 1}]
        assert agent.calls_active == 0


async def test_other_requests_still_reach_aiohttp():
    async with echo_agent() as agent, aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{agent.port}/health") as r:
            assert r.status == 200 and (await r.json())["agent"] == "echo"
        async with http.get(f"http://127.0.0.1:{agent.port}/ws") as r:  # no upgrade asked for
            assert r.status == 426 and "open it as a WebSocket" in await r.text()
        async with http.get(f"http://127.0.0.1:{agent.port}/nowhere") as r:
            assert r.status == 404


async def test_an_upgrade_on_a_kept_alive_connection_is_served_too():
    # aiohttp's client reuses the connection of a finished request for the next one, upgrade included:
    # the front door never sees that head, so aiohttp's route must serve the call
    async with echo_agent() as agent, aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{agent.port}/health") as r:
            assert r.status == 200
        async with http.ws_connect(f"ws://127.0.0.1:{agent.port}/ws?call_id=kept") as ws:
            await ws.send_bytes(b"\x01\x02")
            assert (await ws.receive(timeout=5)).data == b"\x01\x02"
            await ws.send_str(json.dumps({"type": "hello"}))
            assert json.loads((await ws.receive(timeout=5)).data) == {"type": "echo", "of": {"type": "hello"}}
    assert agent.call_ids == ["kept"]


async def test_bad_upgrades_are_refused_with_the_reason():
    async with echo_agent() as agent:
        said = await raw_request(agent.port, upgrade_head(version="8"))
        assert said.startswith(b"HTTP/1.1 426") and b"Sec-WebSocket-Version: 13" in said
        said = await raw_request(agent.port, upgrade_head(key="short"))
        assert said.startswith(b"HTTP/1.1 400") and b"'short' is not 16 bytes" in said
        said = await raw_request(agent.port, upgrade_head(connection="keep-alive"))
        assert said.startswith(b"HTTP/1.1 400") and b"Connection: Upgrade" in said
        said = await raw_request(agent.port, "NONSENSE\r\n\r\n")  # aiohttp's own answer
        assert b" 400 Bad Request" in said.split(b"\r\n")[0]
        assert agent.calls_active == 0 and agent.call_ids == []


async def test_half_open_requests_are_closed_and_a_good_call_still_gets_through(monkeypatch):
    from harness.agent import front_door
    monkeypatch.setattr(front_door, "HEAD_TIMEOUT_S", 0.5)
    async with echo_agent() as srv:
        idle = [await asyncio.open_connection("127.0.0.1", srv.port) for _ in range(200)]
        for _, w in idle:
            w.write(b"GET /ws HTTP/1.1\r\nHost: x\r\n")  # a head that never ends
        answers = await asyncio.gather(*(asyncio.wait_for(r.read(), 5) for r, _ in idle))
        assert all(a.startswith(b"HTTP/1.1 408") for a in answers)  # each closed, saying why
        for _, w in idle:
            w.close()
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(f"ws://127.0.0.1:{srv.port}/ws") as ws:
                await ws.send_bytes(b"\x00\x01" * 320)
                assert (await asyncio.wait_for(ws.receive(), 5)).type == aiohttp.WSMsgType.BINARY


async def test_connections_are_refused_before_the_last_file_descriptors_are_gone(monkeypatch):
    from harness.agent import front_door
    monkeypatch.setattr(front_door, "FD_RESERVE", 10**9)  # as if the process were at its limit
    async with echo_agent() as srv:
        answer = await raw_request(srv.port, upgrade_head())
    assert answer.startswith(b"HTTP/1.1 503") and b"too many connections" in answer


async def test_every_websocket_route_caps_its_messages():
    from harness.agent.oracle_config import OracleConfig
    from harness.agent.server import OracleServer
    async with OracleServer(OracleConfig()) as srv:
        async with aiohttp.ClientSession() as s:
            for path, size in (("/media-stream", 2 * 2**20), ("/ws", 17 * 2**20)):
                # /ws through aiohttp: a kept-alive connection's upgrade skips the front door
                async with s.get(f"http://127.0.0.1:{srv.port}/health") as r:
                    await r.read()
                async with s.ws_connect(f"ws://127.0.0.1:{srv.port}{path}") as ws:
                    try:
                        await ws.send_str("x" * size)
                        msg = await asyncio.wait_for(ws.receive(), 10)
                    except ConnectionError:  # the server hung up while the message was still arriving
                        msg = None
                assert msg is None or msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
                assert msg is None or ws.close_code == 1009, (path, ws.close_code)  # message too big
            async with s.ws_connect(f"ws://127.0.0.1:{srv.port}/health".replace("/health", "/ws")) as ws:
                await ws.send_str(json.dumps({"type": "ping"}))  # the server is still there for a good call


async def test_near_the_limit_the_oldest_idle_connection_makes_room(monkeypatch):
    from harness.agent import front_door
    async with echo_agent() as srv:
        idle_r, idle_w = await asyncio.open_connection("127.0.0.1", srv.port)
        idle_w.write(b"GET /ws HTTP/1.1\r\nHost: x\r\n")  # never finishes its head
        await asyncio.sleep(0.2)
        monkeypatch.setattr(front_door, "FD_RESERVE", 10**9)  # as if the process were at its limit
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(upgrade_head().encode())
        assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"HTTP/1.1 101")  # the new call gets in
        evicted = await asyncio.wait_for(idle_r.read(), 5)
        assert evicted.startswith(b"HTTP/1.1 408") and b"evicted" in evicted
        writer.close()
        idle_w.close()


def _upgrade(port: int, path: str):
    """A raw socket upgraded to a WebSocket at `path` (the 101 read)."""
    import socket
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(upgrade_head(path).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 101"), head[:80]
    return sock


def _send_huge_message(sock, size: int) -> None:
    """A masked text frame announcing `size` bytes, streamed until the server hangs up."""
    import struct
    sock.sendall(struct.pack("!BBQ", 0x81, 0x80 | 127, size) + b"abcd")
    chunk = bytes(2**20)
    try:
        for _ in range(size // len(chunk)):
            sock.sendall(chunk)
    except OSError:  # refused part-way: what a capped server does
        pass
    sock.close()


def test_the_agent_survives_1100_half_open_requests_and_256_mib_messages(tmp_path):
    import json as _json
    import resource
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path
    repo = Path(__file__).resolve().parents[1]
    ready, log = tmp_path / "ready.json", tmp_path / "agent.log"

    def usual_limit():  # the open-files limit most machines give a process
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))

    with log.open("wb") as out:
        agent = subprocess.Popen([sys.executable, "-m", "harness.cli", "agent", "serve", "--oracle", "--port", "0",
                                  "--ready-file", str(ready), "--delay-ms", "250", "--reply-ms", "400"], cwd=repo,
                                 stdout=out, stderr=out, preexec_fn=usual_limit)
    socks = []
    try:
        deadline = time.monotonic() + 30
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        url = _json.loads(ready.read_text())["url"]
        port = int(url.split(":")[2].split("/")[0])
        for _ in range(1100):  # more half-open requests than the agent has file descriptors
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        r = subprocess.run([sys.executable, "-m", "harness.cli", "run", "smoke", "--target", url, "--hints",
                            "--out", str(tmp_path / "reports"), "--no-progress"], cwd=repo, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]  # the good call got in and was measured
        for s in socks:
            s.close()
        for path in ("/ws", "/media-stream"):  # 256 MiB on each route (the lean /ws and aiohttp's Twilio)
            _send_huge_message(_upgrade(port, path), 256 * 2**20)
        with open(f"/proc/{agent.pid}/status") as f:
            peak_kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
        print(f"agent peak memory {peak_kib / 1024:.0f} MiB")
        assert peak_kib < 300 * 1024, f"agent peak memory {peak_kib / 1024:.0f} MiB"
        assert agent.poll() is None  # still serving
    finally:
        for s in socks:
            s.close()
        agent.terminate()
        agent.wait(10)
    print(f"agent log {log.stat().st_size} bytes")
    assert log.stat().st_size < 1_000_000, log.stat().st_size
