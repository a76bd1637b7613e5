"""Audio end-of-turn detection: Pipecat's Smart Turn v3 ONNX model, combined with the lexical and
prosodic cues of `semantic`.

Smart Turn (BSD 2-Clause, shipped inside the `pipecat-ai` wheel as
`pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx`; found without importing pipecat)
is a Whisper-tiny encoder with a classifier head: the last 8 s of the utterance as a log-mel
spectrogram in, the probability that the speaker has finished out. It hears what words cannot
say: a trailing-off "…for four people" against a held "my order number is". Here it runs once
the silence has lasted `probe_ms` (~50 ms of inference on one core), and again every
`reprobe_ms` while the silence goes on; its probability is averaged with the lexical score
(the small language model's, else word rules) and shifted by the pitch/energy cue. A complete
turn then ends after `min_ms` of silence, an unfinished one waits up to `max_ms`.
"""

from __future__ import annotations

import concurrent.futures

import numpy as np

from harness.agent.providers.base import model_file
from harness.agent.providers.turn_semantic import SemanticTurn
from harness.agent.providers.whisper_mel import SAMPLE_RATE, log_mel

MODEL = ("pipecat", "audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx")
WINDOW_S = 8
FRAME_MS = 20


class SmartTurnModel:
    """The ONNX classifier: P(turn complete) for the audio so far (int16 or float, 16 kHz)."""

    def __init__(self, threads: int = 1):
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self._session = ort.InferenceSession(str(model_file(*MODEL)), sess_options=opts,
                                             providers=["CPUExecutionProvider"])

    def p_complete(self, audio: np.ndarray) -> float:
        x = np.asarray(audio, dtype=np.float32)
        if audio.dtype == np.int16:
            x = x / 32768.0
        n = WINDOW_S * SAMPLE_RATE
        x = x[-n:]
        x = np.pad(x, (n - len(x), 0))  # the model was trained with the speech at the end
        out = self._session.run(None, {"input_features": log_mel(x, WINDOW_S)[None]})[0]
        return float(np.asarray(out).reshape(-1)[0])


class SmartTurn(SemanticTurn):
    """`semantic` with an audio end-of-turn model as a third cue, and a shorter floor.

    completeness = `audio_weight` × P(complete from audio) + (1 − `audio_weight`) × lexical
    score + prosodic shift; silence needed = `max_ms` … `min_ms` as in `semantic`."""

    name = "smart"
    score_lo, score_hi = 0.3, 0.7

    def __init__(self, min_ms: float = 200.0, max_ms: float = 1500.0, neutral_ms: float = 600.0,
                 probe_ms: float = 60.0, reprobe_ms: float = 400.0, audio_weight: float = 0.3,
                 lm: bool = True, threads: int = 1):
        if not 0.0 <= audio_weight <= 1.0:
            raise ValueError(f"audio_weight must be within 0…1, got {audio_weight}")
        self.probe_ms, self.reprobe_ms, self.audio_weight = float(probe_ms), float(reprobe_ms), float(audio_weight)
        self._model = SmartTurnModel(threads)
        self._audio_pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="smart-turn")
        super().__init__(min_ms=min_ms, max_ms=max_ms, neutral_ms=neutral_ms, lm=lm)
        self.name = "smart" if self._lm is not None else "smart-rules"

    def warm(self) -> None:
        super().warm()
        self._model.p_complete(np.zeros(SAMPLE_RATE, dtype=np.float32))

    def reset(self) -> None:
        super().reset()
        self._chunks: list[np.ndarray] = []
        self._samples = 0
        self._silent_ms = 0.0
        self._silence = getattr(self, "_silence", 0) + 1  # a probe's answer counts only in its own silence
        self._audio_p: float | None = None
        self._next_probe_ms = self.probe_ms
        self.last_audio: float | None = None

    def observe(self, pcm16: np.ndarray, voiced: bool, transcript: str = "") -> None:
        self._chunks.append(pcm16)
        self._samples += len(pcm16)
        while self._samples - len(self._chunks[0]) >= WINDOW_S * SAMPLE_RATE:
            self._samples -= len(self._chunks.pop(0))
        super().observe(pcm16, voiced, transcript)
        if voiced:  # speech again: whatever the model said about the last silence is stale
            if self._silent_ms:
                self._silence += 1
                self._silent_ms, self._audio_p, self._next_probe_ms = 0.0, None, self.probe_ms
            return
        self._silent_ms += len(pcm16) * 1000.0 / SAMPLE_RATE
        if self._silent_ms >= self._next_probe_ms:
            self._next_probe_ms += self.reprobe_ms
            self._audio_pool.submit(self._score, np.concatenate(self._chunks), self._silence)

    def _score(self, audio: np.ndarray, silence: int) -> None:
        """In the model's thread: the newest probe of the current silence replaces the last."""
        p = self._model.p_complete(audio)
        if silence == self._silence:
            self._audio_p = p

    def _combine(self, lexical: float | None) -> float | None:
        audio = self.last_audio  # read once per decision: the model's thread may replace it
        if audio is None:
            return lexical
        if lexical is None:
            return audio
        return self.audio_weight * audio + (1.0 - self.audio_weight) * lexical

    def silence_needed_ms(self, transcript: str) -> float:
        self.last_audio = self._audio_p  # what _combine weighs
        needed = super().silence_needed_ms(transcript)
        # not heard yet: never sooner than silence alone would end the turn
        return max(needed, self.neutral_ms) if self.last_audio is None else needed
