"""G.711 mu-law (the telephone network's 8 kHz codec), vectorised."""

from __future__ import annotations

import numpy as np

_BIAS = 0x84
_CLIP = 32635


def encode(pcm16: np.ndarray) -> bytes:
    """int16 samples → mu-law bytes (ITU-T G.711), by table (every int16 precomputed once)."""
    return _ENCODE[np.asarray(pcm16, dtype=np.int16).view(np.uint16)].tobytes()


def decode(data: bytes) -> np.ndarray:
    """mu-law bytes → int16 samples, by table."""
    return _DECODE[np.frombuffer(data, dtype=np.uint8)]


def encode_computed(pcm16: np.ndarray) -> bytes:
    """The G.711 formula itself (builds the table; the tests check the table against it)."""
    x = np.asarray(pcm16, dtype=np.int32)
    sign = (x < 0).astype(np.int32) << 7
    mag = np.minimum(np.abs(x), _CLIP) + _BIAS
    exponent = np.floor(np.log2(mag)).astype(np.int32) - 7
    exponent = np.clip(exponent, 0, 7)
    mantissa = (mag >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


def decode_computed(data: bytes) -> np.ndarray:
    """The G.711 expansion formula (builds the table)."""
    u = ~np.frombuffer(data, dtype=np.uint8).astype(np.int32) & 0xFF
    sign = u & 0x80
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    mag = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(sign != 0, -mag, mag).astype(np.int16)


_ENCODE = np.frombuffer(encode_computed(np.arange(65536, dtype=np.uint16).view(np.int16)), dtype=np.uint8).copy()
_DECODE = decode_computed(bytes(range(256)))
_ENCODE.setflags(write=False)
_DECODE.setflags(write=False)
