"""A voice agent built on FastRTC (fastrtc, from PyPI), as its users write one, run offline.

FastRTC's `Stream` with its `ReplyOnPause` turn-taking, mounted on FastAPI: WebRTC offers at
POST /webrtc/offer (FastRTC wants a client-chosen `webrtc_id` in the body and refuses calls
over its concurrency limit with an HTTP 200 body), Twilio Media Streams at /telephone/handler.
Its server sends no RTP until it first replies. `ReplyOnPause` takes a pause-detection model;
FastRTC's default downloads Silero from the Hugging Face Hub at run time, so this passes the
same model family from a wheel instead (`silero-vad`'s ONNX, v5) behind FastRTC's
`PauseDetectionModel` protocol. The reply is one recorded WAV, said after every turn;
`can_interrupt` (FastRTC's barge-in) stops it when the user talks over it.

Run in the interop environment (`bash scripts/setup.sh interop`):
    .venv-interop/fastrtc/bin/python interop/fastrtc_agent.py --port 8791 --reply audio_fixtures/utt_03_joe.wav
"""

from __future__ import annotations

import argparse
import importlib.util
import wave
from pathlib import Path

import numpy as np
import onnxruntime
import uvicorn
from fastapi import FastAPI
from fastrtc import AlgoOptions, ReplyOnPause, Stream

WINDOW = 512  # Silero v5 at 16 kHz


class SileroV5:
    """FastRTC's PauseDetectionModel over the Silero v5 ONNX shipped in the `silero-vad` wheel:
    `vad((rate, audio), options)` → (seconds of speech, speech chunks)."""

    def __init__(self, threshold: float = 0.5):
        # located, not imported: importing silero_vad pulls torch
        path = Path(importlib.util.find_spec("silero_vad").submodule_search_locations[0]) / "data" / "silero_vad.onnx"
        opts = onnxruntime.SessionOptions()
        opts.inter_op_num_threads = opts.intra_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        self.threshold = threshold

    def warmup(self) -> None:
        self.vad((16000, np.zeros(16000, np.float32)), None)

    def vad(self, audio, options) -> tuple[float, list[dict]]:
        rate, x = audio
        x = np.asarray(x).reshape(-1)
        x = x.astype(np.float32) / 32768.0 if x.dtype == np.int16 else x.astype(np.float32)
        if rate != 16000:  # FastRTC hands the VAD 48 kHz WebRTC audio and 8 kHz phone audio
            n = int(round(len(x) * 16000 / rate))
            x = np.interp(np.linspace(0, len(x) - 1, n), np.arange(len(x)), x).astype(np.float32)
        state = np.zeros((2, 1, 128), np.float32)
        context = np.zeros(64, np.float32)
        chunks, speech = [], 0
        for start in range(0, len(x) - WINDOW + 1, WINDOW):
            frame = np.concatenate([context, x[start : start + WINDOW]])[None, :]
            prob, state = self.session.run(None, {"input": frame, "state": state, "sr": np.array(16000, np.int64)})
            context = x[start + WINDOW - 64 : start + WINDOW]
            if float(prob[0][0]) >= self.threshold:
                speech += WINDOW
                chunks.append({"start": start, "end": start + WINDOW})
        return speech / 16000, chunks


def read_reply(path: str) -> tuple[int, np.ndarray]:
    with wave.open(path, "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise SystemExit(f"{path}: expected 16-bit mono PCM")
        return w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), "<i2")


def build_app(reply: tuple[int, np.ndarray], concurrency: int) -> FastAPI:
    rate, samples = reply

    def respond(audio: tuple[int, np.ndarray]):
        for i in range(0, len(samples), rate // 10):  # 100 ms pieces, as a streaming TTS yields them
            yield rate, samples[i : i + rate // 10].reshape(1, -1)

    handler = ReplyOnPause(respond, model=SileroV5(), can_interrupt=True, output_sample_rate=rate,
                           algo_options=AlgoOptions(audio_chunk_duration=0.6, started_talking_threshold=0.2,
                                                    speech_threshold=0.1))
    stream = Stream(handler=handler, modality="audio", mode="send-receive", concurrency_limit=concurrency,
                    server_rtc_configuration={"iceServers": []})  # no STUN: loopback host candidates only
    app = FastAPI()
    stream.mount(app)
    return app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8791)
    ap.add_argument("--reply", required=True, help="a 16-bit mono WAV: what the agent says after each turn")
    ap.add_argument("--concurrency", type=int, default=4, help="FastRTC's concurrency_limit")
    args = ap.parse_args()
    uvicorn.run(build_app(read_reply(args.reply), args.concurrency), host=args.host, port=args.port,
                log_level="warning")


if __name__ == "__main__":
    main()
