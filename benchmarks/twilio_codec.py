"""CPU per 20 ms Twilio frame (16 kHz PCM16 → 8 kHz mu-law and back): the G.711 formula with a
resampling filter designed on every chunk, against table look-up with the filter designed once.
Both paths run side by side in one process, interleaved; their outputs are checked identical.

    python benchmarks/twilio_codec.py
"""

import statistics
import time

import numpy as np
from scipy.signal import resample_poly

from harness.audio import mulaw
from harness.transports.twilio_protocol import MulawDecoder, MulawEncoder

HIST = 64


def naive_encode(state: dict, x: np.ndarray) -> bytes:
    buf = np.concatenate([state["hist"], x.astype(np.float64) / 32768.0])
    y = resample_poly(buf, 1, 2)[HIST // 2:]
    state["hist"] = buf[-HIST:]
    return mulaw.encode_computed(np.clip(np.round(y * 32768.0), -32768, 32767).astype(np.int16))


def naive_decode(state: dict, data: bytes) -> np.ndarray:
    buf = np.concatenate([state["hist"], mulaw.decode_computed(data).astype(np.float64) / 32768.0])
    y = resample_poly(buf, 2, 1)[HIST * 2:]
    state["hist"] = buf[-HIST:]
    return np.clip(np.round(y * 32768.0), -32768, 32767).astype(np.int16)


def per_frame_us(fn, frames, rounds: int = 7) -> float:
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        for f in frames:
            fn(f)
        out.append((time.perf_counter() - t) / len(frames) * 1e6)
    return statistics.median(out)


def main() -> None:
    rng = np.random.default_rng(0)
    frames = [(rng.standard_normal(320) * 3000).astype(np.int16) for _ in range(500)]
    every = np.arange(65536, dtype=np.uint16).view(np.int16)
    assert mulaw.encode(every) == mulaw.encode_computed(every), "table differs from the formula"
    enc = MulawEncoder()
    wire = [enc.encode(f) for f in frames]
    s_enc, s_dec = {"hist": np.zeros(HIST)}, {"hist": np.zeros(HIST // 2)}
    rows = []
    for name, naive, fast, data in (
            ("encode 16k PCM → 8k mu-law", lambda f: naive_encode(s_enc, f), MulawEncoder().encode, frames),
            ("decode 8k mu-law → 16k PCM", lambda d: naive_decode(s_dec, d), MulawDecoder().decode, wire)):
        a, b = per_frame_us(naive, data), per_frame_us(fast, data)
        rows.append((name, a, b))
    print(f"{'per 20 ms frame':32} {'formula, filter per chunk':>26} {'table, filter once':>19} {'ratio':>6}")
    for name, a, b in rows:
        print(f"{name:32} {a:23.1f} µs {b:16.1f} µs {a / b:5.1f}x")


if __name__ == "__main__":
    main()
