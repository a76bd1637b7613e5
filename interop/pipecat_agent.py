"""A voice agent built on Pipecat (pipecat-ai, from PyPI), as its users write one, run offline.

Pipecat's own transports and VAD: `SmallWebRTCTransport` (JSON offer/answer at POST /offer,
aiortc underneath) and `FastAPIWebsocketTransport` with `TwilioFrameSerializer` (Twilio Media
Streams at /media-stream); Silero VAD from the ONNX model inside pipecat's wheel
(`VADProcessor(SileroVADAnalyzer())`). Instead of cloud STT/LLM/TTS services it answers every
turn with one recorded reply (a WAV) when Pipecat's VAD says the user stopped speaking, and on
the user speaking over it broadcasts Pipecat's interruption (the output transport drops what it
has queued; over Twilio the serializer sends `clear`): the turn-taking and the media path are
Pipecat's, which is what turnbench measures here.

Run in the interop environment (`bash scripts/setup.sh interop`):
    .venv-interop/bin/python interop/pipecat_agent.py --port 8790 --reply audio_fixtures/utt_03_joe.wav
"""

from __future__ import annotations

import argparse
import asyncio
import json
import wave

import uvicorn
from fastapi import FastAPI, Request, WebSocket
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import PipelineRunner
from pipecat.pipeline.task import PipelineParams, PipelineTask
from pipecat.processors.audio.vad_processor import VADProcessor
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.transports.base_transport import TransportParams
from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection
from pipecat.transports.smallwebrtc.request_handler import SmallWebRTCRequest, SmallWebRTCRequestHandler
from pipecat.transports.smallwebrtc.transport import SmallWebRTCTransport
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport

CHUNK_MS = 40


def read_reply(path: str) -> tuple[bytes, int]:
    with wave.open(path, "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise SystemExit(f"{path}: expected 16-bit mono PCM")
        return w.readframes(w.getnframes()), w.getframerate()


class Replier(FrameProcessor):
    """Says the recorded reply after each user turn; stops when the user talks over it."""

    def __init__(self, reply: bytes, rate: int):
        super().__init__()
        self.reply, self.rate = reply, rate
        self.bot_speaking = False
        """From the output transport's Bot{Started,Stopped}SpeakingFrame (sent upstream): the
        reply is handed over at once, so this, not the handing over, says it is still playing."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, BotStartedSpeakingFrame):
            self.bot_speaking = True
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self.bot_speaking = False
        elif isinstance(frame, VADUserStartedSpeakingFrame) and self.bot_speaking:
            self.bot_speaking = False
            await self.broadcast_interruption()  # the output transport drops what it has queued
        elif isinstance(frame, VADUserStoppedSpeakingFrame) and not self.bot_speaking:
            await self.say()
        await self.push_frame(frame, direction)

    async def say(self) -> None:
        step = self.rate * 2 * CHUNK_MS // 1000
        await self.push_frame(TTSStartedFrame())
        for i in range(0, len(self.reply), step):  # the output transport paces playback itself
            await self.push_frame(TTSAudioRawFrame(self.reply[i : i + step], self.rate, 1))
        await self.push_frame(TTSStoppedFrame())


async def run_pipeline(transport, reply: bytes, rate: int) -> None:
    pipeline = Pipeline([transport.input(), VADProcessor(vad_analyzer=SileroVADAnalyzer()), Replier(reply, rate),
                         transport.output()])
    task = PipelineTask(pipeline, params=PipelineParams(audio_in_sample_rate=16000, audio_out_sample_rate=rate))

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(_transport, _client):
        await task.cancel()

    await PipelineRunner(handle_sigint=False).run(task)


def build_app(reply: bytes, rate: int) -> FastAPI:
    app = FastAPI()
    handler = SmallWebRTCRequestHandler()  # no ICE servers: loopback host candidates only
    tasks: set[asyncio.Task] = set()

    @app.post("/offer")
    async def offer(request: Request):
        body = await request.json()

        async def on_connection(connection: SmallWebRTCConnection) -> None:
            transport = SmallWebRTCTransport(connection, TransportParams(audio_in_enabled=True, audio_out_enabled=True))
            task = asyncio.create_task(run_pipeline(transport, reply, rate))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        return await handler.handle_web_request(SmallWebRTCRequest.from_dict(body), on_connection)

    @app.websocket("/media-stream")
    async def media_stream(ws: WebSocket):
        await ws.accept()
        start: dict = {}
        while not start:  # Twilio sends `connected`, then `start`
            msg = json.loads(await ws.receive_text())
            if msg.get("event") == "start":
                start = msg["start"]
        serializer = TwilioFrameSerializer(stream_sid=start["streamSid"], call_sid=start.get("callSid"),
                                           params=TwilioFrameSerializer.InputParams(auto_hang_up=False))
        transport = FastAPIWebsocketTransport(ws, FastAPIWebsocketParams(
            audio_in_enabled=True, audio_out_enabled=True, add_wav_header=False, serializer=serializer))
        await run_pipeline(transport, reply, rate)

    @app.get("/health")
    async def health():
        return {"agent": "pipecat", "transports": {"webrtc": "/offer", "twilio": "/media-stream"}}

    return app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8790)
    ap.add_argument("--reply", required=True, help="a 16-bit mono WAV: what the agent says after each turn")
    args = ap.parse_args()
    reply, rate = read_reply(args.reply)
    uvicorn.run(build_app(reply, rate), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
