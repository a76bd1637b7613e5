"""CPU the agent's end of ws-pcm costs per call: aiohttp's WebSocketResponse (a parser feeding a
queue, a task woken per message, an awaited send; turnbench's agent endpoint until 2026-12-05)
against the front door + lean framing the agent server uses now (frames parsed as each read lands
in the connection's own buffer and handed to the session there; a send is one `transport.write`).

Each server echoes every binary message it receives, so per call it takes and sends a 20 ms PCM16
frame every 20 ms, the traffic of an agent that is talking. The server runs pinned to one core,
N callers (turnbench's lean client, one shared 20 ms schedule) on the other; after a warm-up, the
server process's CPU is read from /proc over a window. The two servers alternate, round by round,
in one run, so the ratio is measured side by side on the same noisy machine.

    python benchmarks/agent_ws_endpoint.py [--calls 300] [--rounds 3] [--seconds 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FRAME = bytes(random.Random(1).randrange(256) for _ in range(640))
"""Speech-like content (not silence, which the lean framing masks without an XOR)."""


async def serve(kind: str, port_file: Path) -> None:
    if kind == "aiohttp":
        from aiohttp import WSMsgType, web

        async def ws(request):
            sock = web.WebSocketResponse(max_msg_size=0, autoping=True, heartbeat=None)
            await sock.prepare(request)
            async for msg in sock:
                if msg.type == WSMsgType.BINARY:
                    await sock.send_bytes(msg.data)
            return sock

        app = web.Application()
        app.router.add_get("/ws", ws)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
    else:
        from harness.agent.links import CallerAudio
        from harness.agent.server import AgentServer
        from harness.transports.ws_frames import OP_BINARY

        class Echo(AgentServer):
            async def serve_call(self, link) -> None:
                def on_item(item) -> None:
                    if isinstance(item, CallerAudio):
                        link.frames.write(OP_BINARY, item.pcm16)  # what `send_audio` does, without a coroutine

                await link.pump(on_item)

        port = (await Echo().start()).port
    port_file.write_text(str(port))
    await asyncio.Event().wait()


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def load(port: int, calls: int, warmup_s: float, seconds: float, server_pid: int) -> tuple[float, int]:
    """Server CPU % over the window and the echoes the callers got in it."""
    from harness.transports.ws_client import WsClient

    clients = [WsClient(f"ws://127.0.0.1:{port}/ws") for _ in range(calls)]
    for c in clients:
        await c.connect()
    got = [0]

    def count(*_):
        got[0] += 1

    counting = [asyncio.create_task(c.pump(count)) for c in clients]
    slots = 20
    t0, tick = time.perf_counter(), 0
    window: tuple[float, float, int] | None = None
    end = t0 + warmup_s + seconds
    while True:
        due = t0 + tick * 0.020 / slots
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        for c in clients[tick % slots::slots]:
            c.send_binary(FRAME)
        tick += 1
        now = time.perf_counter()
        if window is None and now >= t0 + warmup_s:
            window = (now, cpu_s(server_pid), got[0])
        if now >= end:
            break
    wall, cpu, echoes = time.perf_counter() - window[0], cpu_s(server_pid) - window[1], got[0] - window[2]
    for c in clients:
        await c.close()
    await asyncio.gather(*counting)
    return 100 * cpu / wall, echoes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--serve", choices=["aiohttp", "lean"], help=argparse.SUPPRESS)
    ap.add_argument("--port-file", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.serve:
        asyncio.run(serve(a.serve, a.port_file))
        return
    cpus = sorted(os.sched_getaffinity(0))
    load_cpu, server_cpu = cpus[0], cpus[-1]
    os.sched_setaffinity(0, {load_cpu})
    results: dict[str, list[float]] = {"aiohttp": [], "lean": []}
    for r in range(a.rounds):
        for kind in results:
            port_file = Path(tempfile.mkdtemp()) / "port"
            proc = subprocess.Popen([sys.executable, __file__, "--serve", kind, "--port-file", str(port_file)],
                                    preexec_fn=lambda: os.sched_setaffinity(0, {server_cpu}))
            try:
                while not (port_file.exists() and port_file.read_text()):
                    time.sleep(0.05)
                pct, echoes = asyncio.run(load(int(port_file.read_text()), a.calls, 3.0, a.seconds, proc.pid))
            finally:
                proc.terminate()
                proc.wait()
            expected = a.calls * 50 * a.seconds
            results[kind].append(pct)
            print(f"round {r + 1} {kind:>8}: server CPU {pct:5.1f} % for {a.calls} calls "
                  f"({pct / a.calls:.3f} % per call; echoes {echoes / expected:.0%} of frames sent)", flush=True)
    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"median server CPU: aiohttp {med['aiohttp']:.1f} %, lean {med['lean']:.1f} %; "
          f"aiohttp ÷ lean = {med['aiohttp'] / med['lean']:.2f}x")


if __name__ == "__main__":
    main()
