"""CPU the oracle spends turning one reply into the PCM16 bytes it sends: converting each 20 ms
chunk as it goes out (float64 arithmetic, the old way) against converting the whole reply once
when it is scheduled (float32 arithmetic, bit-identical) and slicing bytes per chunk. Both run
side by side in one process, interleaved, on the same synthesised replies; outputs are checked
identical.

    python benchmarks/oracle_reply_pcm.py
"""

import statistics
import time

import numpy as np

from harness.agent.oracle_voice import synth_reply
from harness.audio.frames import float_to_pcm16

CHUNK = 320  # 20 ms at 16 kHz


def per_chunk(reply: np.ndarray) -> list[bytes]:
    return [np.clip(np.round(reply[a:a + CHUNK].astype(np.float64) * 32768.0), -32768, 32767).astype("<i2").tobytes()
            for a in range(0, len(reply), CHUNK)]


def once(reply: np.ndarray) -> list[bytes]:
    pcm = float_to_pcm16(reply)
    return [pcm[a:a + CHUNK].tobytes() for a in range(0, len(reply), CHUNK)]


def main(rounds: int = 15, replies: int = 100) -> None:
    rng = np.random.default_rng(0)
    batch = [synth_reply(2000, rng) for _ in range(replies)]
    assert all(per_chunk(r) == once(r) for r in batch[:10])
    times: dict[str, list[float]] = {"per chunk": [], "once per reply": []}
    for _ in range(rounds):
        for name, fn in (("per chunk", per_chunk), ("once per reply", once)):
            t = time.perf_counter()
            for r in batch:
                fn(r)
            times[name].append((time.perf_counter() - t) / replies * 1e6)
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in med.items():
        print(f"{k:>15}: {v:7.1f} µs per 2 s reply")
    print(f"ratio: {med['per chunk'] / med['once per reply']:.1f}x")


if __name__ == "__main__":
    main()
