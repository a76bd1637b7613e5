"""`webrtc`: an aiortc peer with an Opus track paced by the caller's schedule and a data channel.

Signalling, by `signalling`:
* `json` — POST `{"sdp", "type", **extra}` to the URL, answered by `{"sdp", "type", …}`; an id
  the server returns (`id_field`, e.g. `pc_id`) is kept and echoed in later requests; extra
  fields may hold per-call values (`{call_id}`, `{uuid}`, `{run_id}`: `harness.transports.per_call`);
  an HTTP error, or a 200 whose body refuses the call (`refusal_in`), is a `TargetRefused`;
* `whip` (RFC 9725) — POST `application/sdp`, `201 Created` with the answer and a `Location`
  for the session, DELETE of that resource to hang up.
Connection setup (offer → the connection established: ICE connected and DTLS done) is timed
per call (`setup_ms`) and kept out of every turn's latency: the call's clock starts there. An
agent need not send anything before its first reply (no comfort silence, a muted track, DTX):
silence before its first packet, and in any gap between packets, is silence.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import aiohttp
from yarl import URL

from harness.playout import CatchUp
from harness.records.received import AudioReceived, EventReceived, Received
from harness.transports.base import TargetProtocolError, TargetRefused, TargetUnreachable, Transport, refusal_in
from harness.transports.webrtc_media import (
    CALLER_PATHS,
    FrameTo16k,
    PacketTrack,
    ReceivedAudio,
    StockAudioTrack,
    peer_connection,
    restrict_candidates,
    sdp_has_audio,
    track_ended,
)
from harness.transports.webrtc_url import check_http_url

try:
    from aiortc import RTCSessionDescription
    from aiortc.mediastreams import MediaStreamError
except ImportError:  # pragma: no cover
    raise


class WebRtcTransport(Transport):
    """Client side of WebRTC: the caller makes the offer."""

    name = "webrtc"
    continuous = True
    """Media may flow all call long (silence included), so late packets need catching up after."""

    def __init__(self, url: str, signalling: str = "json", extra_fields: dict | None = None,
                 id_field: str | None = "pc_id", datachannel: str | None = "turnbench",
                 ice_servers: tuple[str, ...] = (), jitter_buffer_ms: float = 0.0,
                 connect_timeout_s: float = 10.0, headers: dict | None = None, media: str = "lean"):
        if signalling not in ("json", "whip"):
            raise ValueError(f"signalling {signalling!r}: expected json or whip")
        if media not in ("lean", "stock"):
            raise ValueError(f"media {media!r}: expected lean or stock")
        self.media = media
        """lean: turnbench's media path (webrtc_media). stock: aiortc's own, as its docs use it
        (it encodes AudioFrames, decodes in a thread behind its 80 ms jitter buffer): the
        baseline `bench capacity` compares with; it adds that buffer to every latency."""
        self.url = str(check_http_url(url))
        self.signalling, self.extra_fields, self.id_field = signalling, dict(extra_fields or {}), id_field
        self.datachannel_label, self.ice_servers = datachannel, tuple(ice_servers)
        self.jitter_buffer_ms, self._timeout, self._headers = jitter_buffer_ms, connect_timeout_s, headers or {}
        self.setup_ms: float | None = None
        self.peer_id: str | None = None
        self.resource_url: str | None = None
        self._protocol_errors: list[str] = []
        self._pc = None
        self._track = PacketTrack(CALLER_PATHS) if media == "lean" else StockAudioTrack()
        self._channel = None
        self._audio: ReceivedAudio | None = None
        self._connected: asyncio.Future | None = None
        self._inbox: asyncio.Queue[Received | None] = asyncio.Queue()
        self._tasks: set[asyncio.Task] = set()
        self._closed = False
        self.catch_up = CatchUp()

    # -- setup --------------------------------------------------------------------------------

    async def connect(self) -> None:
        t0 = time.perf_counter_ns()
        restrict_candidates(URL(self.url).host)
        self._pc = pc = peer_connection(self.ice_servers)
        self._connected = connected = asyncio.get_running_loop().create_future()
        pc.addTransceiver(self._track, direction="sendrecv")
        if self.datachannel_label:
            self._channel = pc.createDataChannel(self.datachannel_label, ordered=True)
            self._channel.on("message", self._on_message)

        @pc.on("track")
        def on_track(track) -> None:
            if track.kind != "audio":
                return
            if self.media == "stock":
                self._spawn(self._stock_pump(track))
                return
            receiver = next(t.receiver for t in pc.getTransceivers() if t.receiver.track is track)
            self._audio = ReceivedAudio(receiver, self._on_audio, self.jitter_buffer_ms)
            self._spawn(self._until_ended(track))

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState == "connected" and not connected.done():
                connected.set_result(None)
            elif pc.connectionState in ("failed", "closed"):
                self._inbox.put_nowait(None)
                if not connected.done():
                    connected.set_exception(TargetUnreachable(f"{self.url}: WebRTC connection {pc.connectionState} "
                                                              "before it was established"))

        try:
            await pc.setLocalDescription(await pc.createOffer())
            answer = await self._signal(pc.localDescription.sdp)
            if not sdp_has_audio(answer):
                raise TargetProtocolError("the answer SDP has no audio m-line: the agent sends no audio track")
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
            await asyncio.wait_for(connected, self._timeout)
        except TimeoutError:
            await self.close()
            raise TargetUnreachable(f"{self.url}: WebRTC connection not established within {self._timeout:g} s of "
                                    f"the offer (ICE {pc.iceConnectionState}, connection {pc.connectionState})") from None
        except BaseException:
            await self.close()
            raise
        self.setup_ms = round((time.perf_counter_ns() - t0) / 1e6, 3)

    async def _signal(self, offer_sdp: str) -> str:
        """Send the offer, return the answer SDP; errors name the URL and what came back."""
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout)) as s:
                if self.signalling == "whip":
                    async with s.post(self.url, data=offer_sdp, headers={**self._headers,
                                      "Content-Type": "application/sdp"}) as r:
                        body = await r.text()
                        if r.status >= 400:
                            raise TargetRefused(f"offer answered HTTP {r.status}: {body[:300]} (WHIP POST {self.url})")
                        if r.status != 201:
                            raise TargetProtocolError(f"{self.url}: WHIP offer answered HTTP {r.status} "
                                                      f"(expected 201 Created): {body[:200]}")
                        if "Location" not in r.headers:
                            raise TargetProtocolError(f"{self.url}: WHIP 201 without a Location header")
                        self.resource_url = str(URL(self.url).join(URL(r.headers["Location"])))
                        return body
                payload = {"sdp": offer_sdp, "type": "offer", **self.extra_fields}
                async with s.post(self.url, json=payload, headers=self._headers) as r:
                    body = await r.text()
                    if r.status >= 400:
                        raise TargetRefused(f"offer answered HTTP {r.status}: {body[:300]} (POST {self.url})")
                    try:
                        answer = json.loads(body)
                    except ValueError as e:
                        raise TargetProtocolError(f"{self.url}: answer is not JSON ({e}): {body[:120]!r}") from None
                    if (reason := refusal_in(answer)) is not None:
                        raise TargetRefused(f"refused: {reason} (POST {self.url} answered HTTP {r.status}: "
                                            f"{body[:200]})")
                    if not isinstance(answer, dict) or answer.get("type") != "answer" or not isinstance(
                            answer.get("sdp"), str):
                        raise TargetProtocolError(f"{self.url}: expected {{\"sdp\": …, \"type\": \"answer\"}}, "
                                                  f"got {body[:120]!r}")
                    if self.id_field and answer.get(self.id_field) is not None:
                        self.peer_id = str(answer[self.id_field])
                    return answer["sdp"]
        except (aiohttp.ClientConnectorError, aiohttp.ClientOSError) as e:
            reason = getattr(e, "os_error", None) or e
            raise TargetUnreachable(f"{self.url}: cannot connect ({getattr(reason, 'strerror', None) or reason}); "
                                    "is the agent running?") from None
        except TimeoutError:
            raise TargetUnreachable(f"{self.url}: no answer to the offer within {self._timeout:g} s") from None

    # -- media --------------------------------------------------------------------------------

    def _on_audio(self, arrival: int, samples) -> None:
        """A decoded packet → AudioReceived. A continuous stream would keep any delay a late packet
        once caused (every later frame queues behind it), so, like a real receiver's jitter
        buffer, quiet frames are shortened while a backlog exists; audible audio never is."""
        if self.catch_up is not None:  # None when an impaired path does it after its delay
            samples = self.catch_up.admit(arrival, samples)
        if len(samples):
            self._inbox.put_nowait(AudioReceived(arrival, samples))

    async def _until_ended(self, track) -> None:
        await track_ended(track)
        self._inbox.put_nowait(None)

    async def _stock_pump(self, track) -> None:
        """aiortc's way: frames from its decoder thread, stamped when they reach the loop."""
        to_16k = FrameTo16k()
        try:
            while True:
                frame = await track.recv()
                self._on_audio(time.perf_counter_ns(), to_16k(frame))
        except MediaStreamError:
            self._inbox.put_nowait(None)

    def _on_message(self, message) -> None:
        now = time.perf_counter_ns()
        try:
            event = json.loads(message)
            if not isinstance(event, dict):
                raise ValueError("not a JSON object")
        except (ValueError, TypeError) as e:
            self._protocol_errors.append(f"malformed data channel message ({e}): {str(message)[:80]!r}")
            return
        self._inbox.put_nowait(EventReceived(now, event))

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def send_audio(self, pcm16: bytes) -> int:
        sent = time.perf_counter_ns()
        self._track.send_frame(pcm16)
        return sent

    async def send_event(self, event: dict) -> None:
        if self._channel is None:
            return
        if self._channel.readyState == "open":
            self._channel.send(json.dumps(event))
        else:  # SCTP may open a little after media flows: send once it does
            self._channel.once("open", lambda text=json.dumps(event): self._channel.send(text))

    async def received(self) -> AsyncIterator[Received]:
        while True:
            item = await self._inbox.get()
            if item is None:
                return
            yield item

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        connected = self._connected
        if connected is not None and not connected.done():
            connected.cancel()  # nobody waits for the connection any more: no exception left unretrieved
        if self._pc is not None:
            await self._pc.close()
        if self.resource_url:
            try:
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as s:
                    async with s.delete(self.resource_url, headers=self._headers) as r:
                        if r.status >= 400:
                            self._protocol_errors.append(f"WHIP DELETE {self.resource_url}: HTTP {r.status}")
            except (aiohttp.ClientError, OSError, TimeoutError):
                pass
        self._inbox.put_nowait(None)
