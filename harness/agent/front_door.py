"""The agent server's listening socket: WebSocket upgrades to hot paths are answered here and
served by the lean framing; every other request is handed to aiohttp unchanged.

At hundreds of ws-pcm calls the agent receives tens of thousands of 20 ms frames a second, and
aiohttp's WebSocket (a parser feeding a queue, a task woken per message, an awaited writer per
sent one) was most of the oracle's CPU. Routing happens once per connection, on the request
head; aiohttp's own protocol (`web.Server` is a protocol factory) then takes over the connection
as if it had accepted it, so its routes, Twilio's WebSocket and WebRTC signalling are untouched.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from harness.transports.ws_frames import accept_key

MAX_HEAD_BYTES = 16 * 1024
HEAD_TIMEOUT_S = 10.0
"""A connection that has not sent a whole request head by then is closed (slowloris)."""
FD_RESERVE = 64
"""While fewer than this many file descriptors are left, each new connection closes the oldest one
still sending its request head (503 only when there is none), so a flood of idle connections
cannot keep out a good call or take the agent's own files."""


def fds_left() -> int:
    """File descriptors this process may still open (soft limit minus those open)."""
    import resource
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        return soft - len(os.listdir("/proc/self/fd"))
    except OSError:
        return soft


@dataclass(frozen=True)
class UpgradeRequested:
    """A WebSocket upgrade the front door accepted: the request's path, query and headers."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]


Upgrade = Callable[[asyncio.Transport, UpgradeRequested, bytes], None]
"""Takes over an upgraded connection: (transport, the request, bytes that followed its head)."""


def _refusal(status: str, why: str, extra: str = "") -> bytes:
    body = (why + "\n").encode()
    return (f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
            f"{extra}Connection: close\r\n\r\n").encode("latin-1") + body


def token_matches(token: str, authorization: str | None, query_token: str | None) -> bool:
    """A bearer header or a `token` query parameter equal to `token` (compared in constant time)."""
    import hmac
    given = authorization[7:].strip() if authorization and authorization[:7].lower() == "bearer " else query_token
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def read_head(head: bytes) -> tuple[str, str, str, dict[str, str]] | None:
    """(method, target, version, lower-cased headers) of an HTTP/1.x request head, or None."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            return None
        name = name.strip().lower()
        headers[name] = f"{headers[name]}, {value.strip()}" if name in headers else value.strip()
    return parts[0], parts[1], parts[2], headers


class FrontDoor(asyncio.Protocol):
    """One accepted connection until its request head is read: an upgrade to a path in `upgrades`
    is answered (101, or 400/426 with the reason) and handed over; anything else goes to `http`."""

    def __init__(self, http: Callable[[], asyncio.Protocol], upgrades: dict[str, Upgrade],
                 authorized: Callable[[dict, dict], bool] = lambda headers, query: True,
                 waiting: dict | None = None):
        self.http, self.upgrades, self.authorized = http, upgrades, authorized
        self.waiting = waiting if waiting is not None else {}
        """The server's connections still sending their request head, oldest first."""
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if fds_left() < FD_RESERVE:  # near the limit: the oldest connection still idling makes room
            oldest = next(iter(self.waiting), None)
            if oldest is None:
                return self._refuse("503 Service Unavailable", "too many connections: try again later")
            oldest._refuse("408 Request Timeout", "evicted: the server needed the room for a request that came")
        self.waiting[self] = None
        self._timer = asyncio.get_running_loop().call_later(HEAD_TIMEOUT_S, self._head_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()

    def _cancel_timer(self) -> None:
        self.waiting.pop(self, None)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_timeout(self) -> None:
        self._timer = None
        if self.transport is not None and not self.transport.is_closing():
            self._refuse("408 Request Timeout", f"no complete request head within {HEAD_TIMEOUT_S:g} s")

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > MAX_HEAD_BYTES:
                self._cancel_timer()
                self._to_http()  # aiohttp answers an oversized head with its own error
            return
        self._cancel_timer()
        request = read_head(bytes(self.buf[:end]))
        target = urlsplit(request[1]) if request is not None else None
        if request is None or request[0] != "GET" or target.path not in self.upgrades \
                or "websocket" not in request[3].get("upgrade", "").lower():
            self._to_http()
            return
        headers, rest = request[3], bytes(self.buf[end + 4:])
        self.buf.clear()
        query = {k: v[-1] for k, v in parse_qs(target.query).items()}
        if not self.authorized(headers, query):
            return self._refuse("401 Unauthorized", "this agent wants its token: Authorization: Bearer TOKEN "
                                "(or ?token=)", "WWW-Authenticate: Bearer\r\n")
        if "upgrade" not in headers.get("connection", "").lower():
            return self._refuse("400 Bad Request", "a WebSocket upgrade needs `Connection: Upgrade`")
        if headers.get("sec-websocket-version") != "13":
            return self._refuse("426 Upgrade Required", "only WebSocket version 13 is spoken here",
                                "Sec-WebSocket-Version: 13\r\n")
        key = headers.get("sec-websocket-key", "")
        try:
            if len(base64.b64decode(key, validate=True)) != 16:
                raise ValueError
        except (ValueError, binascii.Error):
            return self._refuse("400 Bad Request", f"Sec-WebSocket-Key {key!r} is not 16 bytes in base64")
        self.transport.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                             b"Sec-WebSocket-Accept: " + accept_key(key.encode()) + b"\r\n\r\n")
        self.upgrades[target.path](self.transport, UpgradeRequested(target.path, query, headers), rest)

    def _to_http(self) -> None:
        proto = self.http()
        self.transport.set_protocol(proto)
        proto.connection_made(self.transport)
        data, self.buf = bytes(self.buf), bytearray()
        proto.data_received(data)

    def _refuse(self, status: str, why: str, extra: str = "") -> None:
        self._cancel_timer()
        self.transport.write(_refusal(status, why, extra))
        self.transport.close()
