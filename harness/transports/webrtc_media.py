"""WebRTC media for both ends, on aiortc, without its hidden delays or its per-packet threads.

Measured with a prototype (issue 4): aiortc's audio receiver holds a jitter buffer of 4
packets (80 ms) and hands a packet on only once the next one has arrived; its resampler holds
a 20 ms frame when fed 16 kHz; and its sender computes an audio level sample by sample in
Python for every frame. Measured under load (issue 6): handing every received packet to
aiortc's per-receiver decoder thread and back cost more of the callers' core than anything
else (the GIL passes twice per packet; ~2,700 preemptions a second at 20 callers). So here:

* audio is Opus-encoded by us straight from 16 kHz (libopus takes 16 kHz input; the RTP clock
  stays 48 kHz) and given to aiortc as ready packets, which it only packetises (no resampler,
  no per-sample Python);
* each received packet is decoded where it arrives, on the event loop (the RTP handler, after
  aiortc's own statistics and NACKs), at 16 kHz by libopus itself (`opus_native`), and handed
  on with the stamp taken there: no jitter buffer, no thread hop, no 48 kHz round trip; any
  receive buffer is explicit (`jitter_buffer_ms`, default 0) and reported;
* ICE offers only loopback host candidates when the peer is on loopback, and never contacts a
  STUN/TURN server unless one is configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import ipaddress
import time
from collections.abc import Callable, Iterable

import numpy as np

from harness.audio.frames import FRAME_NS, FRAME_SAMPLES, SAMPLE_RATE, float_to_pcm16
from harness.audio.resample import StreamResampler
from harness.transports import opus_native

try:
    import aioice.ice
    import av
    from aiortc import MediaStreamTrack, RTCConfiguration, RTCIceServer, RTCPeerConnection
    from aiortc.jitterbuffer import JitterBuffer
except ImportError as e:  # pragma: no cover - depends on the install
    raise ImportError(f"the webrtc transport needs aiortc ({e}): pip install -e '.[webrtc]'") from None

OPUS_RATE = 48_000
OPUS_DELAY_NS = 6_500_000
"""libopus's algorithmic delay (312 samples at 48 kHz): decoded audio comes out this much later."""
INPUT_TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
_original_host_addresses = aioice.ice.get_host_addresses
_host_override: list[str] | None = None


def _host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    if _host_override is not None:
        return list(_host_override)
    return _original_host_addresses(use_ipv4, use_ipv6)


aioice.ice.get_host_addresses = _host_addresses


def restrict_candidates(peer_host: str | None) -> None:
    """Offer only the loopback address as an ICE host candidate when the peer is on loopback."""
    global _host_override
    try:
        ip = ipaddress.ip_address((peer_host or "").strip("[]"))
    except ValueError:
        ip = None
    if peer_host in ("localhost",) or (ip is not None and ip.is_loopback):
        _host_override = ["::1"] if ip is not None and ip.version == 6 else ["127.0.0.1"]


def peer_connection(ice_servers: Iterable[str] = ()) -> RTCPeerConnection:
    """A peer connection with exactly the ICE servers given (none by default: aiortc would
    otherwise ask a public STUN server)."""
    return RTCPeerConnection(RTCConfiguration(iceServers=[RTCIceServer(u) for u in ice_servers]))


def sdp_has_audio(sdp: str) -> bool:
    return any(line.startswith("m=audio ") and not line.startswith("m=audio 0 ") for line in sdp.splitlines())


def audio_frame(pcm16: bytes, pts: int):
    """16 kHz mono PCM16 as a PyAV AudioFrame at stream time `pts` (samples)."""
    frame = av.AudioFrame.from_ndarray(np.frombuffer(pcm16, dtype="<i2").reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate, frame.pts, frame.time_base = SAMPLE_RATE, pts, INPUT_TIME_BASE
    return frame


class EncodedPaths:
    """Opus packets of frame sequences this process has encoded, each path starting from settled
    digital silence: callers replay the same fixtures, so most of a caller's speech has been
    encoded before, by another call, from the same starting point (what load tools do with
    pre-encoded media, but made on the fly, so clips may start at any sample).

    A trie: (node, frame bytes) → (child node, packet). Lookups compare the frame bytes, so a
    path is followed only for exactly the same audio. It stops growing at `max_nodes` (about
    1 KB each: 50,000 hold every fixture at a few hundred different start offsets)."""

    ROOT = 0

    def __init__(self, bitrate: int = 32_000, max_nodes: int = 50_000):
        self.bitrate, self.max_nodes = bitrate, max_nodes
        self._edges: dict[tuple[int, bytes], tuple[int, bytes]] = {}

    def __len__(self) -> int:
        return len(self._edges)

    def get(self, node: int, frame: bytes) -> tuple[int, bytes] | None:
        return self._edges.get((node, frame))

    def add(self, node: int, frame: bytes, packet: bytes) -> int | None:
        """Record `packet` for `frame` after `node`; the child node, or None when full."""
        if len(self._edges) >= self.max_nodes:
            return None
        child = len(self._edges) + 1
        self._edges[(node, frame)] = (child, packet)
        return child


CALLER_PATHS = EncodedPaths()
"""Shared by every caller in this process (one event loop: no locking)."""


class OpusFrameEncoder:
    """16 kHz PCM16 frames → Opus packets (mono, 20 ms), timed on the 48 kHz RTP clock.

    libopus encodes 16 kHz input natively with the same 6.5 ms algorithmic delay as at 48 kHz,
    so nothing is resampled on the way out. Encoding was the largest cost per caller under load,
    and most of it is repeated work, so:

    * digital silence, once the encoder has settled on it (two silent frames in a row encoded to
      the same packet), is sent as that packet again without running the encoder;
    * with `paths`, audio that follows settled silence is looked up frame by frame in packets
      already encoded from settled silence (by this call or another); the encoder runs only
      where the audio is new, first catching up on the frames it skipped since settled
      silence, so the packets it makes continue the very audio the peer has decoded.

    Timing is untouched (one packet per frame, at the frame's RTP time). Packets made after
    settled silence come from an encoder in a settled-silence state, not necessarily this
    call's own, so the speech differs from one uninterrupted encode the way two codec runs do,
    and is as close to the source (tests/test_webrtc_media.py). `reuse_silence=False` encodes
    every frame."""

    def __init__(self, bitrate: int = 32_000, reuse_silence: bool = True, paths: EncodedPaths | None = None):
        self.codec = av.CodecContext.create("libopus", "w")
        self.codec.bit_rate = bitrate
        self.codec.format = "s16"
        self.codec.layout = "mono"
        self.codec.sample_rate = SAMPLE_RATE
        self.codec.time_base = INPUT_TIME_BASE
        self.codec.options = {"application": "voip"}
        if paths is not None and paths.bitrate != bitrate:
            raise ValueError(f"paths hold {paths.bitrate} b/s packets; this encoder makes {bitrate} b/s")
        self._reuse_silence = reuse_silence
        self._paths = paths if reuse_silence else None
        self._pts = 0  # the stream's RTP time (input samples)
        self._codec_pts = 0  # what the codec has consumed
        self._last_silent: bytes | None = None  # the previous packet, when its frame was silent
        self._silent_packet: bytes | None = None  # the settled silence packet, when settled
        self._node: int | None = None  # where this stream is in `paths` (None: off them)
        self._lag: list[bytes] = []  # frames taken from `paths` that the codec has not seen
        self.frames_encoded = self.frames_reused = self.frames_replayed = self.frames_caught_up = 0
        """Frames the codec encoded for sending; silent frames sent as the settled packet;
        frames sent from `paths`; of those, frames the codec encoded later to catch up."""
        if reuse_silence:  # start settled: the state every path starts from, and a DTX sender's
            silence = bytes(2 * FRAME_SAMPLES)
            for _ in range(8):
                self._note(True, self._run_codec(silence))
                if self._silent_packet is not None:
                    break

    @property
    def settled(self) -> bool:
        """The codec has settled on digital silence: what it has been given is all on the wire."""
        return self._silent_packet is not None

    def _run_codec(self, pcm16: bytes) -> bytes:
        frame = audio_frame(pcm16, self._codec_pts)
        self._codec_pts += frame.samples
        return b"".join(bytes(p) for p in self.codec.encode(frame))  # one packet per 20 ms frame

    def _note(self, silent: bool, data: bytes) -> None:
        """Settled once two silent frames in a row gave the same packet."""
        if silent and data == self._last_silent and self._reuse_silence:
            self._silent_packet, self._node, self._lag = data, None, []  # the codec's state is settled too
        self._last_silent = data if silent else None

    def encode(self, pcm16: bytes) -> list:
        silent = not pcm16.strip(b"\x00")
        n = len(pcm16) // 2
        if self._silent_packet is not None and silent:
            self.frames_reused += 1
            return [self._packet(self._silent_packet, n)]
        paths = self._paths
        if self._silent_packet is not None:  # a path starts at settled silence
            self._silent_packet, self._node = None, (EncodedPaths.ROOT if paths is not None else None)
        hit = paths.get(self._node, pcm16) if self._node is not None else None
        if hit is not None:
            self._node, data = hit
            self._lag.append(pcm16)
            self.frames_replayed += 1
        else:
            for skipped in self._lag:
                self._run_codec(skipped)
            self.frames_caught_up += len(self._lag)
            self._lag = []
            data = self._run_codec(pcm16)
            self.frames_encoded += 1
            if self._node is not None:
                self._node = paths.add(self._node, pcm16, data)
        self._note(silent, data)
        return [self._packet(data, n)]

    def _packet(self, data: bytes, n: int):
        p = av.Packet(data)
        p.pts, p.time_base = self._pts, INPUT_TIME_BASE
        self._pts += n
        return p


class PacketTrack(MediaStreamTrack):
    """An audio track that hands aiortc ready Opus packets, in the order they were queued."""

    kind = "audio"

    def __init__(self, paths: EncodedPaths | None = None) -> None:
        super().__init__()
        self._queue: asyncio.Queue = asyncio.Queue()
        self.encoder = OpusFrameEncoder(paths=paths)
        self.packets_withheld = 0

    def send_frame(self, pcm16: bytes, withhold_silence: bool = False) -> None:
        """One 20 ms frame of 16 kHz PCM16: encoded now, sent as soon as aiortc takes it.

        With `withhold_silence`, a silent frame is still encoded (the codec stays continuous) but
        its packet is withheld once the codec has settled on silence, as a DTX sender does: the
        stream's RTP time moves on, nothing goes on the wire. Until it has settled, packets still
        go: they carry the end of the audio before (the codec's 6.5 ms look-ahead, and the state
        the peer's decoder needs to fall silent); a stream cut off without them starts its next
        audio with the stale end of the last, replayed at full level (measured)."""
        packets = self.encoder.encode(pcm16)
        if withhold_silence and self.encoder.settled:
            self.packets_withheld += len(packets)
            return
        for p in packets:
            self._queue.put_nowait(p)

    async def recv(self):
        return await self._queue.get()


class StockAudioTrack(MediaStreamTrack):
    """The straightforward caller track: 16 kHz PCM16 frames as AudioFrames, which aiortc
    resamples, measures sample by sample and encodes itself (in its executor). For comparison
    (`media="stock"`), not for measurement."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._queue: asyncio.Queue = asyncio.Queue()
        self._pts = 0

    def send_frame(self, pcm16: bytes) -> None:
        frame = audio_frame(pcm16, self._pts)
        self._pts += frame.samples
        self._queue.put_nowait(frame)

    async def recv(self):
        return await self._queue.get()


class FrameTo16k:
    """Decoded 48 kHz frames (any layout) of one stream → 16 kHz mono int16, chunk edges joined."""

    def __init__(self) -> None:
        self._rs = StreamResampler(OPUS_RATE, SAMPLE_RATE)

    def __call__(self, frame) -> np.ndarray:
        x = frame.to_ndarray()
        channels = len(frame.layout.channels)
        if x.ndim == 2 and x.shape[0] == 1 and channels > 1:
            x = x.reshape(-1, channels)[:, 0]
        else:
            x = x[0]
        return float_to_pcm16(self._rs.process(x.astype(np.float32) / 32768.0))


class _DecodeOnArrival(JitterBuffer):
    """Decodes every audio packet the moment aiortc has parsed it; hands aiortc nothing back
    (so its decoder thread stays idle)."""

    def __init__(self, audio: ReceivedAudio):
        super().__init__(capacity=16)
        self._audio = audio

    def add(self, packet):
        self._audio._decode(packet._data)
        return False, None


class ReceivedAudio:
    """A remote audio track decoded on arrival: each packet becomes 16 kHz mono PCM16 handed to
    `sink(arrival_ns, samples)`, stamped where the packet left the socket (the RTP handler).

    Decoded by libopus at 16 kHz directly where it loads (`opus_native`), else by PyAV at 48 kHz
    and filtered down (`native=False` forces that path)."""

    def __init__(self, receiver, sink: Callable[[int, np.ndarray], None], jitter_buffer_ms: float = 0.0,
                 native: bool = True):
        self.jitter_buffer_ns = int(jitter_buffer_ms * 1e6)
        self._sink = sink
        self._arrival_ns = 0
        self.decode_errors = 0
        self._native = opus_native.OpusDecoder(SAMPLE_RATE) if native and opus_native.load() else None
        if self._native is None:
            self._decoder = av.CodecContext.create("libopus", "r")
            self._decoder.format, self._decoder.layout, self._decoder.sample_rate = "s16", "mono", OPUS_RATE
            self._to_16k = FrameTo16k()
        receiver._RTCRtpReceiver__jitter_buffer = _DecodeOnArrival(self)
        inner = receiver._handle_rtp_packet

        async def stamped(packet, arrival_time_ms: int) -> None:
            self._arrival_ns = time.perf_counter_ns()
            await inner(packet, arrival_time_ms)

        receiver._handle_rtp_packet = stamped

    @property
    def native(self) -> bool:
        return self._native is not None

    def _decode(self, payload: bytes) -> None:
        at = self._arrival_ns + self.jitter_buffer_ns
        if self._native is not None:
            try:
                pcm = self._native.decode(payload)
            except opus_native.OpusDecodeError:
                self.decode_errors += 1  # a corrupt packet is a lost one; the stream goes on
                return
            if len(pcm):
                self._sink(at, pcm)
            return
        try:
            frames = self._decoder.decode(av.Packet(payload))
        except av.FFmpegError:
            self.decode_errors += 1
            return
        for frame in frames:
            self._sink(at, self._to_16k(frame))


async def track_ended(track) -> None:
    """Returns when a remote track ends (its peer hung up or the connection closed)."""
    from aiortc.mediastreams import MediaStreamError

    with contextlib.suppress(MediaStreamError):
        while True:
            await track.recv()  # nothing arrives here: decoding happens on arrival


IDLE_MODES = ("silence", "nothing")


class PacedOutput:
    """The agent's outgoing stream: a 20 ms frame every 20 ms on an absolute schedule. Audio handed
    in at time t is placed at t in the stream (or after what is queued), and frame k (stream time
    [k·20, k·20 + 20) ms) goes out once complete, at its end: a constant one-frame packetisation
    delay, as in any RTP sender.

    Where nothing is queued, `idle="silence"` sends digital silence (what most servers do);
    `idle="nothing"` sends no packet at all once the codec has settled (a muted track, or DTX
    without comfort noise): the agent is silent on the wire from the connection until its first
    reply, and between replies after the few packets that end each one."""

    def __init__(self, track: PacketTrack, idle: str = "silence"):
        if idle not in IDLE_MODES:
            raise ValueError(f"idle {idle!r}: expected one of {', '.join(IDLE_MODES)}")
        self.track, self.idle = track, idle
        self._buf = np.zeros(0, dtype=np.int16)
        self._buf_start = 0  # stream sample index of _buf[0]
        self._t0 = time.perf_counter_ns()
        self._frame = 0
        self._task: asyncio.Task | None = None

    def _pos(self, t_ns: int) -> int:
        return -(-(t_ns - self._t0) * SAMPLE_RATE // 1_000_000_000)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def queued_end_ns(self) -> int:
        return self._t0 + (self._buf_start + len(self._buf)) * 1_000_000_000 // SAMPLE_RATE

    def put(self, pcm16: bytes) -> int:
        """Queue audio; returns the stream time (perf_counter_ns) at which it starts."""
        x = np.frombuffer(pcm16, dtype="<i2")
        now = time.perf_counter_ns()
        at = max(self._pos(now), self._buf_start + len(self._buf), self._frame * FRAME_SAMPLES)
        gap = at - (self._buf_start + len(self._buf))
        self._buf = np.concatenate([self._buf, np.zeros(gap, np.int16), x])
        return now

    def packet_time(self, t_ns: int) -> int:
        """When the packet holding stream time `t_ns` (after the codec's delay) goes out."""
        k = (t_ns + OPUS_DELAY_NS - self._t0) // FRAME_NS
        return self._t0 + (k + 1) * FRAME_NS

    def clear(self) -> None:
        """Drop everything queued that the stream has not reached yet."""
        keep = max(0, self._pos(time.perf_counter_ns()) - self._buf_start)
        self._buf = self._buf[:keep]

    async def _run(self) -> None:
        while True:
            due = self._t0 + (self._frame + 1) * FRAME_NS
            delay = (due - time.perf_counter_ns()) / 1e9
            if delay > 0:
                await asyncio.sleep(delay)
            lo = self._frame * FRAME_SAMPLES
            frame = np.zeros(FRAME_SAMPLES, np.int16)
            a = lo - self._buf_start
            queued = a < len(self._buf) and a + FRAME_SAMPLES > 0
            if queued:
                part = self._buf[max(a, 0): a + FRAME_SAMPLES]
                frame[max(0, -a): max(0, -a) + len(part)] = part
            drop = max(0, a + FRAME_SAMPLES)
            self._buf, self._buf_start = self._buf[drop:], self._buf_start + drop
            self.track.send_frame(frame.tobytes(), withhold_silence=not queued and self.idle == "nothing")
            self._frame += 1

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
