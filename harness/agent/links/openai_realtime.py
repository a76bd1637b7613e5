"""The agent's end of the OpenAI Realtime protocol at /v1/realtime: the built-in agents (oracle
and reference) as a local, offline realtime endpoint.

The session's audio format (pcm16 24 kHz, G.711 mu-law or A-law) and protocol shape (GA, or beta
by its `session.update` shape or the `OpenAI-Beta: realtime=v1` header) are the client's; turn
taking is the agent's own (its VAD and turn detector, or the oracle's programme), reported in
the protocol's events:

* the agent's `turn.end` → `input_audio_buffer.speech_stopped` + `input_audio_buffer.committed`;
* its `stt.final` → `conversation.item.input_audio_transcription.completed`;
* audio → `response.created`, then the response's audio deltas; `audio.stop` (or the next
  reply after a gap) → the audio done event and `response.done`;
* a barge-in (`clear`) → `input_audio_buffer.speech_started` (the client stops playout and
  truncates) and `response.done` with status `cancelled`.

The agent's other trace events (`llm.first_token`, `tts.first_audio`, …) go out as they are.
`input_audio_buffer.commit` and `response.create` are acknowledged; the agent answers when its
own turn detection says so. `conversation.item.truncate` is kept (`truncations`).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from harness.agent.links.base import CallerAudio, CallerEvent, CallLink, Endpoint, Inbound
from harness.audio.frames import SAMPLE_RATE
from harness.transports import stamping
from harness.transports.realtime_protocol import (
    AUDIO_DELTA,
    AUDIO_DONE,
    BETA_HEADER,
    COMMITTED,
    GA_FORMAT,
    SPEECH_STARTED,
    SPEECH_STOPPED,
    TRANSCRIPTION_DONE,
    RealtimeMessageError,
    WireDecoder,
    WireEncoder,
    b64,
    b64audio,
    parse,
    read_session,
)

REALTIME_PATH = "/v1/realtime"
MAX_MESSAGE_BYTES = 4 * 2**20
"""An append is 20-100 ms of base64 audio (a few kB); 4 MB allows a whole clip at once."""
RESPONSE_GAP_NS = 250_000_000
"""Audio after this long without any ends the response before it and starts a new one."""


class RealtimeLink(CallLink):
    transport = "openai-realtime"
    can_clear = True

    def __init__(self, ws: web.WebSocketResponse, stamper, call_id: str, protocol: str):
        super().__init__(call_id)
        self.ws, self._stamper = ws, stamper
        self.protocol, self.format, self.turn_detection = protocol, "pcm16", "server_vad"
        self._enc, self._dec = WireEncoder("pcm16"), WireDecoder("pcm16")
        self._caller_samples = 0
        self._item = self._new_id("item")
        self._response: str | None = None
        self._response_item: str | None = None
        self._last_audio_ns = 0
        self.truncations: list[dict] = []
        """Every `conversation.item.truncate` the client sent."""

    @staticmethod
    def _new_id(prefix: str) -> str:
        return f"{prefix}_{secrets.token_hex(8)}"

    @classmethod
    async def accept(cls, request: web.Request, call_id: str) -> RealtimeLink:
        ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES, autoping=True, heartbeat=None)
        await ws.prepare(request)
        beta = request.headers.get(BETA_HEADER[0], "").lower() == BETA_HEADER[1]
        link = cls(ws, stamping.install(request.transport), call_id, "beta" if beta else "ga")
        await link._send({"type": "session.created", "session": link._session()})
        return link

    def _session(self) -> dict:
        if self.protocol == "ga":
            return {"type": "realtime", "object": "realtime.session", "id": self._new_id("sess"),
                    "audio": {"input": {"format": _ga_format(self.format), "turn_detection": {"type": self.turn_detection}},
                              "output": {"format": _ga_format(self.format)}}}
        return {"object": "realtime.session", "id": self._new_id("sess"), "input_audio_format": self.format,
                "output_audio_format": self.format, "turn_detection": {"type": self.turn_detection}}

    def _ms(self) -> int:
        return self._caller_samples * 1000 // SAMPLE_RATE

    async def inbound(self) -> AsyncIterator[Inbound]:
        try:
            async for raw in self.ws:
                now = stamping.arrival_ns(self._stamper)
                if raw.type != aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    msg = parse(raw.data)
                    kind = msg["type"]
                    if kind == "input_audio_buffer.append":
                        pcm = self._dec.decode(b64audio(msg, "audio"))
                        self._caller_samples += len(pcm)
                        yield CallerAudio(pcm.tobytes(), now)
                    elif kind == "session.update":
                        await self._session_update(msg)
                    elif kind == "input_audio_buffer.commit":
                        await self._commit()
                    elif kind == "conversation.item.truncate":
                        self.truncations.append(msg)
                        await self._send({"type": "conversation.item.truncated", "item_id": msg.get("item_id"),
                                          "content_index": msg.get("content_index", 0),
                                          "audio_end_ms": msg.get("audio_end_ms")})
                    elif kind in ("response.create", "response.cancel", "input_audio_buffer.clear"):
                        continue  # the agent's own turn-taking decides when it speaks and stops
                    elif kind.startswith("turnbench."):
                        yield CallerEvent(msg, now)
                    else:
                        await self._error("invalid_request_error", "unknown_event", f"unsupported event type {kind!r}")
                except RealtimeMessageError as e:
                    await self._error("invalid_request_error", "invalid_value", str(e))
        except ConnectionResetError:
            return

    async def _session_update(self, msg: dict) -> None:
        protocol, fmt, td = read_session(msg.get("session"))
        self.protocol, self.turn_detection = protocol, td
        if fmt != self.format:
            self.format, self._enc, self._dec = fmt, WireEncoder(fmt), WireDecoder(fmt)
        await self._send({"type": "session.updated", "session": self._session()})

    async def _commit(self) -> None:
        item, self._item = self._item, self._new_id("item")
        await self._send({"type": COMMITTED, "item_id": item, "previous_item_id": None})

    async def send_audio(self, pcm16: bytes) -> int:
        now = time.perf_counter_ns()
        if self._response is not None and now - self._last_audio_ns > RESPONSE_GAP_NS:
            await self._end_response("completed")
        if self._response is None:
            self._response, self._response_item = self._new_id("resp"), self._new_id("item")
            await self._send({"type": "response.created", "response": {
                "id": self._response, "object": "realtime.response", "status": "in_progress", "output": []}})
        text = json.dumps({"type": AUDIO_DELTA[self.protocol], "event_id": self._new_id("event"),
                           "response_id": self._response, "item_id": self._response_item, "output_index": 0,
                           "content_index": 0, "delta": b64(self._enc.encode(pcm16, time.perf_counter_ns()))})
        sent = time.perf_counter_ns()  # encoded: the chunk leaves now
        self._last_audio_ns = sent
        if not self.ws.closed:
            await self.ws.send_str(text)
        return sent

    async def _end_response(self, status: str) -> None:
        response, item = self._response, self._response_item
        self._response = self._response_item = None
        if response is None:
            return
        await self._send({"type": AUDIO_DONE[self.protocol], "response_id": response, "item_id": item,
                          "output_index": 0, "content_index": 0})
        await self._send({"type": "response.done", "response": {"id": response, "object": "realtime.response",
                                                                "status": status}})

    async def clear(self) -> None:
        """A barge-in: the client is told the caller started speaking (it stops playout, truncates)."""
        self._enc.restart()
        await self._send({"type": SPEECH_STARTED, "audio_start_ms": self._ms(), "item_id": self._item})
        await self._end_response("cancelled")

    async def send_event(self, event: dict) -> None:
        kind = event.get("type")
        if kind == "turn.end":
            await self._send({"type": SPEECH_STOPPED, "audio_end_ms": self._ms(), "item_id": self._item})
            await self._commit()
        elif kind == "stt.final":
            await self._send({"type": TRANSCRIPTION_DONE, "item_id": self._item, "content_index": 0,
                              "transcript": str(event.get("text", ""))})
        elif kind == "audio.stop":
            await self._end_response("completed")
        elif kind == "error":
            await self._error("server_error", "agent_error", str(event.get("message", "?")))
        else:
            await self._send(event)

    async def _error(self, kind: str, code: str, message: str) -> None:
        await self._send({"type": "error", "error": {"type": kind, "code": code, "message": message}})

    async def _send(self, msg: dict) -> None:
        if not self.ws.closed:
            await self.ws.send_str(json.dumps({"event_id": self._new_id("event"), **msg}))

    async def hang_up(self, code: int = 1000, reason: str = "") -> None:
        if not self.ws.closed:
            await self.ws.close(code=code, message=reason.encode()[:120])


def _ga_format(fmt: str) -> dict:
    return dict(GA_FORMAT[fmt])


class RealtimeEndpoint(Endpoint):
    """The Realtime WebSocket at /v1/realtime (`?model=` is accepted and ignored: the agent is the model)."""

    def mount(self, app: web.Application) -> None:
        app.router.add_get(REALTIME_PATH, self._serve)

    def health(self) -> dict:
        return {"realtime_path": REALTIME_PATH}

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        link = await RealtimeLink.accept(request, self.server.next_call_id(request.query, self.server.agent))
        await self.server.serve_link(link)
        return link.ws
