"""Third-party servers the suite runs on loopback (llama.cpp's OpenAI server, faster-whisper-server,
agent-cli's speech server): a free port, start, wait until it listens, stop."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVERS_PY = ROOT / ".venv-servers" / "bin" / "python"
NEEDS_SERVERS = "needs the OpenAI-compatible speech servers (bash scripts/setup.sh servers)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(cmd: list[str], port: int, log: Path, timeout_s: float = 90.0) -> Iterator[str]:
    """Run `cmd` until the block ends; yields http://127.0.0.1:PORT once something listens there."""
    with log.open("wb") as out:
        # its own process group: a server's worker processes (agent-cli synthesises in a spawned child)
        # are stopped with it, not left running to load the rest of the suite
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{cmd[:4]} exited with {proc.returncode}: {log.read_text()[-1500:]}")
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{cmd[:4]} not listening after {timeout_s:g} s: {log.read_text()[-1500:]}") from None
                    time.sleep(0.2)
            yield f"http://127.0.0.1:{port}"
        finally:
            _stop_group(proc)


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's whole process group, SIGKILL to what is left after 10 s."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)  # anyone left in the group?
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
