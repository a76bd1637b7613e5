"""The Locust side of an engine: starts it lazily (once, under a lock), asks for calls, hands
back their turns. Runs under gevent; nothing here takes a timestamp that ends up in a result."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable

import gevent
import gevent.event
import gevent.lock

from harness.errors import TurnbenchError


class EngineFailed(TurnbenchError):
    """The engine process did not start or went away."""


class EngineClient:
    """One engine process per Locust process; `on_call_done(call_id, rows, error)` runs in a greenlet."""

    def __init__(self, config_json: str, node: str, on_call_done: Callable[[str | None, list[dict], str | None], None],
                 start_timeout_s: float = 60.0):
        self.config_json, self.node = config_json, node
        self.on_call_done = on_call_done
        self.start_timeout_s = start_timeout_s
        self._lock = gevent.lock.Semaphore()
        self._proc: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._reader: gevent.Greenlet | None = None
        self._waiting: dict[str, gevent.event.AsyncResult] = {}
        self._drained: gevent.event.AsyncResult | None = None
        self.schedule_done = gevent.event.Event()
        self._dir = tempfile.mkdtemp(prefix="turnbench-engine-")
        self.failed: str | None = None

    def ensure(self) -> None:
        """Start the engine on first use; every user of this process shares it."""
        with self._lock:
            if self._sock is not None:
                return
            if self.failed:
                raise EngineFailed(self.failed)
            cfg = os.path.join(self._dir, "config.json")
            with open(cfg, "w") as f:
                f.write(self.config_json)
            path = os.path.join(self._dir, "engine.sock")
            # a fresh interpreter: gevent's patches do not reach it
            self._proc = subprocess.Popen([sys.executable, "-m", "harness.load.engine", "--socket", path,
                                           "--node", self.node, "--config", cfg], stdout=subprocess.PIPE, text=True)
            with gevent.Timeout(self.start_timeout_s, False):
                line = self._proc.stdout.readline().strip()
            if line != "ready":
                self.failed = f"caller engine for {self.node} did not start: {line or 'no answer'}"
                self._proc.kill()
                raise EngineFailed(self.failed)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            self._sock = s
            self._reader = gevent.spawn(self._read)

    def _send(self, msg: dict) -> None:
        self._sock.sendall((json.dumps(msg) + "\n").encode())

    def _read(self) -> None:
        f = self._sock.makefile("rb")
        try:
            for line in f:
                self._dispatch(json.loads(line))
        except OSError:  # our own close() while reading, or the engine died
            pass
        self.failed = self.failed or "caller engine closed its socket"
        for w in self._waiting.values():
            w.set_exception(EngineFailed(self.failed))
        self._waiting.clear()
        self.schedule_done.set()
        if self._drained is not None and not self._drained.ready():
            self._drained.set({"op": "drained", "health": None, "abandoned": None, "lost": True})

    def _dispatch(self, msg: dict) -> None:
        op = msg.get("op")
        if op == "call_done":
            self.on_call_done(msg.get("id"), msg.get("rows") or [], msg.get("error"))
            waiter = self._waiting.pop(msg.get("id"), None)
            if waiter is not None:
                waiter.set(msg.get("error"))
        elif op == "refused":
            waiter = self._waiting.pop(msg.get("id"), None)
            if waiter is not None:
                waiter.set_exception(EngineFailed(f"refused: {msg.get('why')}"))
        elif op == "schedule_done":
            self.schedule_done.set()
        elif op == "drained" and self._drained is not None:
            self._drained.set(msg)

    def call(self, call_id: str, index: int) -> gevent.event.AsyncResult:
        """Place a call now; the result holds its error (None when it completed)."""
        self.ensure()
        res = gevent.event.AsyncResult()
        self._waiting[call_id] = res
        self._send({"op": "call", "id": call_id, "index": index})
        return res

    def arrivals(self, rate_per_s: float, process: str, duration_s: float, seed: int, prefix: str,
                 first_index: int, max_in_flight: int) -> None:
        """Open loop: the engine places calls on its own schedule until drained."""
        self.ensure()
        self._send({"op": "arrivals", "rate_per_s": rate_per_s, "process": process, "duration_s": duration_s,
                    "seed": seed, "prefix": prefix, "first_index": first_index, "max_in_flight": max_in_flight})

    def drain(self, timeout_s: float) -> dict | None:
        """Stop placing calls; wait for those in flight (up to `timeout_s`); the engine's final health."""
        if self._sock is None:
            return None
        self._drained = gevent.event.AsyncResult()
        self._send({"op": "drain", "timeout_s": timeout_s})
        return self._drained.get(timeout=timeout_s + 30)

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._sock.close()
            self._sock = None
        if self._proc is not None:
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
            self._proc = None
