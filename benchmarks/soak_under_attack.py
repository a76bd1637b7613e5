"""Soak: a `turnbench load` against the in-process oracle for a fixed time while a slow-client
attack runs beside it, then: were turns lost, and did the good calls' measurement error stay
within calibration's bounds?

The load process gets the usual 1024 open files; the attacker holds more half-open requests
than that (re-opening every one the agent closes) and, every `--huge-every-s`, streams a 256 MiB
message at each WebSocket route. Loopback only, bounded in count and time.

    python benchmarks/soak_under_attack.py --minutes 10 --users 20 --half-open 1100
"""

from __future__ import annotations

import argparse
import json
import resource
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def usual_fd_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))


def agent_port(out: Path, deadline: float) -> int:
    while time.monotonic() < deadline:
        for run in out.glob("*/run.json"):
            url = (json.loads(run.read_text()).get("agent") or {}).get("url")
            if url:
                return int(url.split(":")[2].split("/")[0])
        time.sleep(0.5)
    raise SystemExit("the load run never said where its agent listens")


class Attack:
    """Half-open requests kept at `n`, and now and then a 256 MiB message per WebSocket route."""

    def __init__(self, port: int, n: int, huge_every_s: float):
        self.port, self.n, self.huge_every_s = port, n, huge_every_s
        self.stop = threading.Event()
        self.opened = self.closed_by_agent = self.huge_sent = 0

    def run(self) -> None:
        socks: list[socket.socket] = []
        next_huge = time.monotonic() + self.huge_every_s
        while not self.stop.is_set():
            alive = []
            for s in socks:  # the agent closes idle ones (408 or eviction): count and replace them
                try:
                    s.setblocking(False)
                    gone = s.recv(4096) == b""
                except BlockingIOError:
                    gone = False
                except OSError:
                    gone = True
                if gone:
                    self.closed_by_agent += 1
                    s.close()
                else:
                    alive.append(s)
            socks = alive
            while len(socks) < self.n and not self.stop.is_set():
                try:
                    s = socket.create_connection(("127.0.0.1", self.port), timeout=2)
                    s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\n")
                    socks.append(s)
                    self.opened += 1
                except OSError:
                    break
            if time.monotonic() >= next_huge:
                for path in ("/ws", "/media-stream"):
                    self._huge(path)
                next_huge = time.monotonic() + self.huge_every_s
            self.stop.wait(1.0)
        for s in socks:
            s.close()

    def _huge(self, path: str) -> None:
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            s.sendall((f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
            s.recv(4096)
            s.sendall(struct.pack("!BBQ", 0x81, 0xFF, 256 * 2**20) + b"abcd")
            chunk = bytes(2**20)
            for _ in range(256):
                s.sendall(chunk)
        except OSError:
            pass  # refused part-way: what a capped server does
        finally:
            self.huge_sent += 1
            s.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--half-open", type=int, default=1100)
    ap.add_argument("--huge-every-s", type=float, default=60.0)
    ap.add_argument("--scenario", default="conversation")
    ap.add_argument("--no-attack", action="store_true", help="the same load with no attack (the baseline)")
    args = ap.parse_args()
    out = Path(tempfile.mkdtemp(prefix="turnbench-soak-"))
    cmd = [sys.executable, "-m", "harness.cli", "load", args.scenario, "--target", "oracle", "--users",
           str(args.users), "--think-s", "1", "--duration", f"{args.minutes * 60:.0f}s", "--out", str(out)]
    print("soak:", " ".join(cmd[2:]), flush=True)
    load = subprocess.Popen(cmd, cwd=REPO, preexec_fn=usual_fd_limit, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    attack = Attack(agent_port(out, time.monotonic() + 120), args.half_open, args.huge_every_s)
    thread = threading.Thread(target=attack.run, daemon=True)
    if not args.no_attack:
        thread.start()
    stdout, stderr = load.communicate(timeout=args.minutes * 60 + 600)
    attack.stop.set()
    if thread.is_alive():
        thread.join(30)
    (run,) = out.iterdir()
    summary = json.loads((run / "summary.json").read_text())
    err = (summary.get("measurement_error_ms") or {}).get("latency_ms") or {}
    result = {"exit": load.returncode, "turns": summary["turns"], "turns_lost": summary["load"]["turns_lost"],
              "turns_expected": summary["load"]["turns_expected"],
              "calls_abandoned": summary["load"]["calls_abandoned"],
              "latency_ms": {k: summary["latency_ms"][k] for k in ("p50", "p99", "n")},
              "error_vs_oracle_ms": err, "harness_overloaded": summary["harness"].get("overloaded"),
              "attack": {"half_open_opened": attack.opened, "closed_by_agent": attack.closed_by_agent,
                         "huge_messages": attack.huge_sent}, "run_folder": str(run)}
    print(json.dumps(result, indent=1))
    ok = (load.returncode == 0 and result["turns_lost"] == 0 and err.get("median_abs_error_ms", 99) <= 1.0)
    if not ok:
        print(stdout[-3000:], stderr[-3000:], file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
