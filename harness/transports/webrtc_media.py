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
  aiortc's own statistics and NACKs), and handed on with the stamp taken there: no jitter
  buffer, no thread hop; any receive buffer is explicit (`jitter_buffer_ms`, default 0) and
  reported;
* ICE offers only loopback host candidates when the peer is on loopback, and never contacts a
  STUN/TURN server unless one is configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import ipaddress
import time
from typing import Callable, Iterable

import numpy as np

from harness.audio.frames import FRAME_NS, FRAME_SAMPLES, SAMPLE_RATE, float_to_pcm16
from harness.audio.resample import StreamResampler

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
TIME_BASE = fractions.Fraction(1, OPUS_RATE)
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


class OpusFrameEncoder:
    """16 kHz PCM16 frames → Opus packets (mono, 20 ms), timed on the 48 kHz RTP clock.

    libopus encodes 16 kHz input natively with the same 6.5 ms algorithmic delay as at 48 kHz,
    so nothing is resampled on the way out. Digital silence, once the encoder has settled on it
    (two silent frames in a row encoded to the same packet), is sent as that packet again
    without running the encoder: a caller is silent most of a call, and encoding was the
    largest cost per caller under load. Timing is untouched (same packets at the same RTP
    times, onsets to the sample); the speech after such a stretch is coded from a slightly
    different encoder state, so it differs from a full encode the way two codec runs do, and is
    as close to the source (tests/test_webrtc_media.py). `reuse_silence=False` encodes all."""

    def __init__(self, bitrate: int = 32_000, reuse_silence: bool = True):
        self.codec = av.CodecContext.create("libopus", "w")
        self.codec.bit_rate = bitrate
        self.codec.format = "s16"
        self.codec.layout = "mono"
        self.codec.sample_rate = SAMPLE_RATE
        self.codec.time_base = INPUT_TIME_BASE
        self.codec.options = {"application": "voip"}
        self._pts = 0
        self._silent_packet: bytes | None = None
        self._settled = False
        self._reuse_silence = reuse_silence
        self.frames_reused = 0
        """Silent frames sent as the settled silence packet (not encoded)."""

    def encode(self, pcm16: bytes) -> list:
        x = np.frombuffer(pcm16, dtype="<i2").reshape(1, -1)
        silent = not x.any()
        if silent and self._settled:
            p = av.Packet(self._silent_packet)
            p.pts, p.time_base = self._pts, INPUT_TIME_BASE
            self._pts += x.shape[1]
            self.frames_reused += 1
            return [p]
        frame = av.AudioFrame.from_ndarray(x, format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = SAMPLE_RATE, self._pts, INPUT_TIME_BASE
        packets = list(self.codec.encode(frame))
        for p in packets:  # one 20 ms frame in, its packet out: RTP time is the frame's stream time
            p.pts, p.time_base = self._pts, INPUT_TIME_BASE
        self._pts += x.shape[1]
        if silent and len(packets) == 1:
            data = bytes(packets[0])
            self._settled, self._silent_packet = self._reuse_silence and data == self._silent_packet, data
        else:
            self._settled, self._silent_packet = False, None
        return packets


class PacketTrack(MediaStreamTrack):
    """An audio track that hands aiortc ready Opus packets, in the order they were queued."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._queue: asyncio.Queue = asyncio.Queue()
        self.encoder = OpusFrameEncoder()

    def send_frame(self, pcm16: bytes) -> None:
        """One 20 ms frame of 16 kHz PCM16: encoded now, sent as soon as aiortc takes it."""
        for p in self.encoder.encode(pcm16):
            self._queue.put_nowait(p)

    async def recv(self):
        return await self._queue.get()


class _DecodeOnArrival(JitterBuffer):
    """Decodes every audio packet the moment aiortc has parsed it; hands aiortc nothing back
    (so its decoder thread stays idle)."""

    def __init__(self, audio: "ReceivedAudio"):
        super().__init__(capacity=16)
        self._audio = audio

    def add(self, packet):
        self._audio._decode(packet._data)
        return False, None


class ReceivedAudio:
    """A remote audio track decoded on arrival: each packet becomes 16 kHz mono PCM16 handed to
    `sink(arrival_ns, samples)`, stamped where the packet left the socket (the RTP handler)."""

    def __init__(self, receiver, sink: Callable[[int, np.ndarray], None], jitter_buffer_ms: float = 0.0):
        self.jitter_buffer_ns = int(jitter_buffer_ms * 1e6)
        self._sink = sink
        self._arrival_ns = 0
        self.decode_errors = 0
        self._decoder = av.CodecContext.create("libopus", "r")
        self._decoder.format, self._decoder.layout, self._decoder.sample_rate = "s16", "mono", OPUS_RATE
        self._rs = StreamResampler(OPUS_RATE, SAMPLE_RATE)
        receiver._RTCRtpReceiver__jitter_buffer = _DecodeOnArrival(self)
        inner = receiver._handle_rtp_packet

        async def stamped(packet, arrival_time_ms: int) -> None:
            self._arrival_ns = time.perf_counter_ns()
            await inner(packet, arrival_time_ms)

        receiver._handle_rtp_packet = stamped

    def _decode(self, payload: bytes) -> None:
        try:
            frames = self._decoder.decode(av.Packet(payload))
        except av.FFmpegError:
            self.decode_errors += 1  # a corrupt packet is a lost one; the stream goes on
            return
        for frame in frames:
            self._sink(self._arrival_ns + self.jitter_buffer_ns, self.convert(frame))

    def convert(self, frame) -> np.ndarray:
        """A decoded 48 kHz frame (any layout) → 16 kHz mono int16."""
        x = frame.to_ndarray()
        channels = len(frame.layout.channels)
        if x.ndim == 2 and x.shape[0] == 1 and channels > 1:
            x = x.reshape(-1, channels)[:, 0]
        else:
            x = x[0]
        y = self._rs.process(x.astype(np.float32) / 32768.0)
        return float_to_pcm16(y)


async def track_ended(track) -> None:
    """Returns when a remote track ends (its peer hung up or the connection closed)."""
    from aiortc.mediastreams import MediaStreamError

    with contextlib.suppress(MediaStreamError):
        while True:
            await track.recv()  # nothing arrives here: decoding happens on arrival


class PacedOutput:
    """The agent's outgoing stream: a 20 ms frame every 20 ms on an absolute schedule, silence
    where nothing is queued. Audio handed in at time t is placed at t in the stream (or after
    what is queued), and frame k (stream time [k·20, k·20 + 20) ms) goes out once complete, at
    its end: a constant one-frame packetisation delay, as in any RTP sender."""

    def __init__(self, track: PacketTrack):
        self.track = track
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
            if a < len(self._buf):
                part = self._buf[max(a, 0): a + FRAME_SAMPLES]
                frame[max(0, -a): max(0, -a) + len(part)] = part
            drop = max(0, a + FRAME_SAMPLES)
            self._buf, self._buf_start = self._buf[drop:], self._buf_start + drop
            self.track.send_frame(frame.tobytes())
            self._frame += 1

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
