"""libopus called directly: 16 kHz decoding with the 48 kHz path's timing, and clear errors."""

import numpy as np
import pytest

from harness.audio.frames import FRAME_SAMPLES, SAMPLE_RATE

pytest.importorskip("aiortc")
from harness.transports import opus_native  # noqa: E402
from harness.transports.webrtc_media import OPUS_RATE, OpusFrameEncoder, ReceivedAudio  # noqa: E402
from tests.test_webrtc_media import call_audio, frames_of  # noqa: E402

pytestmark = pytest.mark.skipif(opus_native.load() is None, reason="no libopus to load")


class _Receiver:
    """Test double: the two things ReceivedAudio touches on aiortc's RTCRtpReceiver."""

    _RTCRtpReceiver__jitter_buffer = None

    async def _handle_rtp_packet(self, packet, arrival_time_ms: int) -> None:
        self._RTCRtpReceiver__jitter_buffer.add(packet)


class _Packet:
    def __init__(self, data: bytes):
        self._data = data


async def receive(packets: list[bytes], native: bool) -> np.ndarray:
    got = []
    receiver = _Receiver()
    audio = ReceivedAudio(receiver, lambda at, x: got.append(x), native=native)
    assert audio.native is native
    for p in packets:
        await receiver._handle_rtp_packet(_Packet(p), 0)
    assert all(len(x) == FRAME_SAMPLES for x in got)
    return np.concatenate(got)


async def test_16k_decoding_keeps_the_48k_paths_timing(fixtures):
    sig, starts = call_audio(fixtures)
    enc = OpusFrameEncoder(reuse_silence=False)
    packets = [bytes(p) for f in frames_of(sig) for p in enc.encode(f)]
    fast, slow = await receive(packets, True), await receive(packets, False)
    assert len(fast) == len(slow) == len(sig)

    def lag(at: int) -> int:
        """How many samples later `fast` carries the utterance starting at `at` than `slow` does."""
        a, b = slow[at: at + 8000].astype(float), fast[at: at + 8000].astype(float)
        return max(range(-40, 41), key=lambda k: float(np.dot(a[max(0, -k): len(a) - max(0, k)],
                                                          b[max(0, k): len(b) - max(0, -k)])))

    lags = [lag(s) for s in starts if s < len(sig) - 8000]
    assert all(abs(k) <= 1 for k in lags), lags  # within one 16 kHz sample (62.5 µs)
    assert np.corrcoef(fast.astype(float), slow.astype(float))[0, 1] > 0.97  # the same speech


def test_bad_packets_are_errors_and_empty_ones_nothing():
    dec = opus_native.OpusDecoder(SAMPLE_RATE)
    assert len(dec.decode(b"")) == 0
    with pytest.raises(opus_native.OpusDecodeError, match="error -"):
        dec.decode(b"\xff")  # a code-3 packet with no frame count byte
    good = bytes(OpusFrameEncoder(reuse_silence=False).encode(np.zeros(FRAME_SAMPLES, np.int16).tobytes())[0])
    assert len(dec.decode(good)) == FRAME_SAMPLES  # the decoder goes on after a bad packet
    assert opus_native.OpusDecoder(OPUS_RATE).decode(good).shape == (FRAME_SAMPLES * 3,)
