"""libopus's own decoder at 16 kHz, called directly (ctypes), for the WebRTC receive path.

FFmpeg's libopus wrapper always decodes at 48 kHz, so every received packet was decoded at
48 kHz and filtered down to 16 kHz in Python: ~80 µs a packet, the largest cost per caller
under load once decoding moved onto the event loop. libopus decodes at 16 kHz natively
(~10 µs), with the same timing (onsets within one 16 kHz sample of the 48 kHz path, measured
over the fixtures: tests/test_opus_native.py).

The library is PyAV's own copy (its wheel bundles libopus) or else the system's; where neither
loads, `load()` returns None and the caller keeps the PyAV path.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import glob
import os

import numpy as np

from harness.errors import ProtocolViolation

MAX_FRAME_MS = 120
"""The longest Opus packet: the output buffer holds this much."""


class OpusDecodeError(ProtocolViolation):
    """libopus refused a packet (corrupt or truncated)."""


@functools.lru_cache(maxsize=1)
def load() -> ctypes.CDLL | None:
    """libopus, or None where it cannot be found."""
    candidates = []
    try:
        import av

        base = os.path.dirname(av.__file__)
        for pattern in ("../av.libs/libopus*.so*", ".dylibs/libopus*.dylib", "../av.libs/opus*.dll"):
            candidates += sorted(glob.glob(os.path.join(base, pattern)))
    except ImportError:
        pass
    system = ctypes.util.find_library("opus")
    if system:
        candidates.append(system)
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        lib.opus_decoder_create.restype = ctypes.c_void_p
        lib.opus_decoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
        lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
        lib.opus_decode.restype = ctypes.c_int
        lib.opus_decode.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32, ctypes.c_void_p,
                                    ctypes.c_int, ctypes.c_int]
        return lib
    return None


class OpusDecoder:
    """One stream's decoder: Opus packets → mono int16 at `rate` (8, 12, 16, 24 or 48 kHz)."""

    def __init__(self, rate: int, lib: ctypes.CDLL | None = None):
        self._lib = lib or load()
        if self._lib is None:
            raise OSError("libopus not found (neither PyAV's bundled copy nor a system libopus)")
        err = ctypes.c_int()
        self._st = self._lib.opus_decoder_create(rate, 1, ctypes.byref(err))
        if err.value != 0 or not self._st:
            raise OSError(f"opus_decoder_create({rate}, 1) failed with error {err.value}")
        self._max = rate * MAX_FRAME_MS // 1000
        self._buf = np.zeros(self._max, np.int16)
        self._ptr = self._buf.ctypes.data

    def decode(self, packet: bytes) -> np.ndarray:
        """The packet's samples (a new array). An empty packet decodes to nothing."""
        if not packet:
            return self._buf[:0].copy()
        n = self._lib.opus_decode(self._st, packet, len(packet), self._ptr, self._max, 0)
        if n < 0:
            raise OpusDecodeError(f"opus_decode: error {n} on a {len(packet)}-byte packet")
        return self._buf[:n].copy()

    def __del__(self) -> None:
        st, self._st = getattr(self, "_st", None), None
        if st and self._lib is not None:
            self._lib.opus_decoder_destroy(st)
