"""G.711 A-law (the other telephone codec, 8 kHz), vectorised by table like `mulaw`."""

from __future__ import annotations

import numpy as np

_SEG_END = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])


def encode(pcm16: np.ndarray) -> bytes:
    """int16 samples → A-law bytes (ITU-T G.711), by table."""
    return _ENCODE[np.asarray(pcm16, dtype=np.int16).view(np.uint16)].tobytes()


def decode(data: bytes) -> np.ndarray:
    """A-law bytes → int16 samples, by table."""
    return _DECODE[np.frombuffer(data, dtype=np.uint8)]


def encode_computed(pcm16: np.ndarray) -> bytes:
    """The G.711 A-law compression formula (builds the table)."""
    v = np.asarray(pcm16, dtype=np.int32) >> 3
    mask = np.where(v >= 0, 0xD5, 0x55)
    v = np.where(v >= 0, v, -v - 1)
    seg = np.searchsorted(_SEG_END, v)  # first segment whose end is >= v
    shift = np.where(seg < 2, 1, seg)
    aval = (np.minimum(seg, 7) << 4) | ((v >> shift) & 0x0F)
    aval = np.where(seg >= 8, 0x7F, aval)
    return ((aval ^ mask) & 0xFF).astype(np.uint8).tobytes()


def decode_computed(data: bytes) -> np.ndarray:
    """The G.711 A-law expansion formula (builds the table)."""
    a = np.frombuffer(data, dtype=np.uint8).astype(np.int32) ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    t = np.where(seg == 0, t + 8, t + 0x108)
    t = np.where(seg > 1, t << np.maximum(seg - 1, 0), t)
    return np.where(a & 0x80, t, -t).astype(np.int16)


_ENCODE = np.frombuffer(encode_computed(np.arange(65536, dtype=np.uint16).view(np.int16)), dtype=np.uint8).copy()
_DECODE = decode_computed(bytes(range(256)))
_ENCODE.setflags(write=False)
_DECODE.setflags(write=False)
